"""DVC stage `efficiency`: parameters, MACs per frame and measured throughput of each run in `methods`, and
its parameters and MACs per frame as its paper configures it (profile `paper`) → metrics/efficiency.json."""
from functools import partial
from pathlib import Path

import torch

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.aus import aus_for_layout
from aubench.data.datasets import DatasetConfig
from aubench.eval.efficiency_report import (EfficiencyConfig, method_efficiency, model_cost,
                                           torchvision_resnet18_reference)
from aubench.io import write_json
from aubench.train.distributed import resolve_device
from aubench.train.optim import build_optimizer
from aubench.train.runs import import_plugins, resolve_run
from aubench.train.config import TrainConfig


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="metrics/efficiency.json")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    config = section(EfficiencyConfig, params, "efficiency")
    train = section(TrainConfig, params, "train")
    num_aus = len(aus_for_layout(section(DatasetConfig, params, "dataset").layout))
    device = resolve_device(train.device)
    report = {"threads": torch.get_num_threads(), "num_aus": num_aus,
              "resnet18_torchvision_1000way_fc": torchvision_resnet18_reference(config.paper_input_size)}
    paper = load_params(args.params, profile=False)  # each method's section as its paper configures it
    paper_size = section(TrainConfig, paper, "train").input_size
    for name in params.get("methods") or ():
        run = resolve_run(params, name)
        report[name] = method_efficiency(run.method, run.method_config, partial(build_optimizer, config=run.optim),
                                         num_aus, train.input_size, config, device)
        parameters, macs = model_cost(run.method, resolve_run(paper, name).method_config, num_aus, paper_size)
        report[name]["paper_configuration"] = {"parameters": parameters, "macs_per_frame": macs,
                                               "input_size": paper_size}
    write_json(Path(args.out), report)


if __name__ == "__main__":
    run_stage(main)
