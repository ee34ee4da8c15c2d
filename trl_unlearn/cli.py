"""The ``trl-unlearn`` command.

::

    trl-unlearn npo|dipo|simnpo|gradascent|graddiff [--num_processes N] [TRL-style arguments]
    trl-unlearn idkdpo|altpo|idknll|undial|wga|satimp|ceu|rmu|pdu [--num_processes N] [TRL-style arguments]
    trl-unlearn eval tofu|muse|wmdp --model_name_or_path ID [options]
    trl-unlearn quickstart [--method npo|dipo] [options]
    trl-unlearn tofu-bench [--methods npo dipo ...] [--output_dir DIR] [options]

Training commands take the method's config fields, TRL's `ModelConfig` flags and the dataset
shortcuts (`--dataset locuslab/TOFU --forget_split forget10 --retain_split retain90`, or
`--data_dir`), and `--config file.yaml`. With `--num_processes N` (N > 1) or
`--accelerate_config FILE` they run through `accelerate launch` (multi-GPU, DeepSpeed, FSDP).
"""

from __future__ import annotations

import sys

METHOD_NAMES = ("npo", "dipo", "simnpo", "gradascent", "graddiff",
                "idkdpo", "altpo", "idknll", "undial", "wga", "satimp", "ceu", "rmu", "pdu")
USAGE = __doc__


def _pop_launch_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Split `accelerate launch` flags (`--num_processes`, `--accelerate_config`) from script flags."""
    launch, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in ("--num_processes", "--accelerate_config"):
            if not eq:
                if i + 1 >= len(args):
                    raise SystemExit(f"{name} needs a value")
                value, i = args[i + 1], i + 1
            launch += ["--config_file" if name == "--accelerate_config" else name, value]
        else:
            rest.append(arg)
        i += 1
    return launch, rest


def _launch(method: str, launch_args: list[str], script_args: list[str]) -> None:
    from accelerate.commands.launch import launch_command, launch_command_parser

    parsed = launch_command_parser().parse_args(
        launch_args + ["--module", "trl_unlearn.scripts.unlearn", method, *script_args]
    )
    launch_command(parsed)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command in METHOD_NAMES:
        launch_args, script_args = _pop_launch_args(rest)
        if launch_args and not (launch_args[:2] == ["--num_processes", "1"] and len(launch_args) == 2):
            _launch(command, launch_args, script_args)
        else:
            from .scripts.unlearn import main as unlearn_main

            unlearn_main([command, *script_args])
        return 0
    if command == "eval":
        from .scripts.evaluate import main as eval_main

        return eval_main(rest) or 0
    if command == "quickstart":
        from .quickstart import main as quickstart_main

        return quickstart_main(rest) or 0
    if command == "tofu-bench":
        from .tofu_bench.pipeline import main as bench_main

        return bench_main(rest) or 0
    print(f"trl-unlearn: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
