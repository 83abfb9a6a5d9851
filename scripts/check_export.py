"""Loads a `workbench export RUN` file into scripts/mobile_former.py with strict=True, runs the
check batch the export wrote (the run's first validation images, normalised as it trained)
through it and prints the largest difference from the pooled features the workbench computed.

    python scripts/check_export.py exports/RUN.safetensors [--tolerance 1e-4]

Exit status 0 when the difference is within the tolerance, 1 otherwise.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mobile_former import MobileFormer, load_safetensors  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("--tolerance", type=float, default=1e-4)
    a = p.parse_args()
    stem = a.weights[: -len(".safetensors")] if a.weights.endswith(".safetensors") else a.weights
    manifest = json.load(open(stem + ".json"))
    check = load_safetensors(stem + ".check.safetensors")
    model = MobileFormer.from_manifest(manifest)
    missing, unexpected = model.load_state_dict(load_safetensors(a.weights), strict=True)
    model.eval()
    with torch.no_grad():
        pooled = model.pooled(check["input"])
    ours = check["pooled"]
    diff = (pooled - ours).abs().max().item()
    scale = ours.abs().max().item()
    n, dim = ours.shape
    ok = diff <= a.tolerance
    print(
        f"check_export: run={manifest['run']} preset={manifest['preset']} epoch={manifest['epoch']} "
        f"images={n} dim={dim} max_abs_diff={diff:.3e} max_abs_feature={scale:.3e} "
        f"relative={diff / max(scale, 1e-30):.1e} "
        f"tolerance={a.tolerance:g} {'ok' if ok else 'FAILED'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
