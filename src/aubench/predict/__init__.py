"""`aubench predict`: AU occurrence for any face video, image or folder of images, with a deploy model file.

`model_file` (the self-contained model the `deploy` stage writes), `sources` (what predict reads: decoded
frames with container timestamps), `pipeline` (landmarks → alignment → network, streamed in chunks),
`outputs` (per-frame CSV, timeline figure, overlay video) and `cli` (the console command).
"""
