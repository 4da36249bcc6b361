#!/usr/bin/env bash
# Regenerate every result that the synthetic recipe (src/stsampler/configs/synthetic/_cpu.yaml and the
# recipes beside it) produces, after a change to it: the ablation's three tables, the ladder, the
# training-speed and step-profile tables, and the demo's table. Run from the repository root:
#
#     bash benchmarks/regenerate_synthetic.sh            # everything, in the order below
#     bash benchmarks/regenerate_synthetic.sh ladder     # one step: ablation, ladder, speed or demo
#
# The speed step profiles on the ablation's data (runs/ablation/data), so it runs after the ablation step.
#
# Every training run is one thread, two side by side (--jobs 2 --threads 1), as the tables record; a
# finished run is reused, so an interrupted regeneration picks up where it stopped. Runs of the old
# recipe in runs/ablation or runs/ladder are refused by name (move those folders aside first). The
# demo runs last and alone, so that its time is the one a user sees; `--out runs/demo` keeps it apart
# from a user's own stsampler_demo folder. What is left by hand: the README's demo table, time and the
# sentences that quote these tables, and docs/sampler.png (`stsampler show` on the demo's seed-0
# sampler run) with its caption.
set -euo pipefail

SIDE_BY_SIDE=(--jobs 2 --threads 1)

ablation() {
    python benchmarks/synthetic_ablation.py --out runs/ablation --shots 1 --seeds 3 \
        --rows none TS SA TS+SA all oracle oracle-clip "${SIDE_BY_SIDE[@]}"
    python benchmarks/synthetic_ablation.py --out runs/ablation --shots 1 --seeds 6 \
        --rows none all oracle oracle-clip --results benchmarks/results/synthetic_ablation_6seeds.md "${SIDE_BY_SIDE[@]}"
    python benchmarks/synthetic_ablation.py --out runs/ablation --shots 5 --seeds 3 \
        --rows none all oracle oracle-clip "${SIDE_BY_SIDE[@]}"
}

ladder() {
    python benchmarks/ladder.py --out runs/ladder --levels medium hard --seeds 3 "${SIDE_BY_SIDE[@]}"
}

speed() {
    python benchmarks/train_speed.py --episodes 64
    python benchmarks/train_profile.py --data runs/ablation/data --threads 1
}

demo() {
    time stsampler demo --out runs/demo
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(ablation ladder speed demo)
for step in "${steps[@]}"; do
    case "$step" in
        ablation | ladder | speed | demo) "$step" ;;
        *) echo "unknown step '$step': choose from ablation, ladder, speed, demo" >&2; exit 2 ;;
    esac
done
