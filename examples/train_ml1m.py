"""Train on MovieLens-1M: exactly ``examples/train.py``, whose default --dataset is ml-1m.

    python examples/train_ml1m.py --model hydrarec-uni-decay --device gpu

Every flag, --resume and every error behave as in train.py (``--help`` lists them).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train.py beside this file

from train import main  # noqa: E402

if __name__ == "__main__":
    main()
