"""One module per paper: `<method>.py` writes that paper's tables and figures (`write_tables`), from the paper's
numbers in `<method>.yaml` and our runs. `aubench.report.write_reports` finds a method's module by its name,
so adding a paper adds two files here and edits nothing else."""
