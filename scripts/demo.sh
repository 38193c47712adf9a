#!/usr/bin/env bash
# make demo: GeLoRA end to end on the bundled MiniLM.
set -euo pipefail
echo "gelora demo: profile/plan/train are not yet available in this version; showing the ID engine instead."
python -c "import numpy as np; rng=np.random.default_rng(0); np.save('/tmp/gelora-demo.npy', rng.normal(size=(3000,6)) @ rng.normal(size=(6,384)))"
gelora id /tmp/gelora-demo.npy
