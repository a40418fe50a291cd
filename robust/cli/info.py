"""``robust info``: versions of robust and its dependencies, and the device that would be used."""

from __future__ import annotations

import platform

from rich.table import Table

from robust.cli.base import DeviceOpt, JsonOpt, _emit, app, console


@app.command()
def info(device: str = DeviceOpt, as_json: bool = JsonOpt) -> None:
    """Versions of robust and its main dependencies, and the device that would be used."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from robust.device import resolve_device

    packages = {}
    for pkg in ("robust-suite", "torch", "torchvision", "timm", "torchattacks", "robustbench", "grad-cam", "kornia",
                "scikit-learn", "safetensors"):
        try:
            packages[pkg] = version(pkg)
        except PackageNotFoundError:
            packages[pkg] = None
    dev = resolve_device(device)
    out = {"python": platform.python_version(), "platform": platform.platform(), "packages": packages,
           "device": str(dev), "cuda_available": torch.cuda.is_available(),
           "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
           "threads": torch.get_num_threads()}
    if as_json:
        _emit(out)
        return
    table = Table("what", "value", title="robust info")
    table.add_row("python", out["python"])
    table.add_row("platform", out["platform"])
    for pkg, v in packages.items():
        table.add_row(pkg, v or "not installed")
    table.add_row("device", out["device"])
    table.add_row("cuda devices", ", ".join(out["cuda_devices"]) or "none")
    console.print(table)
