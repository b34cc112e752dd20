"""Shared fixtures: the hypothesis profiles and the backend parametrisation."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import tinyhydra as th
from tinyhydra.engine import backend

# `ci` bounds the examples so the suite runs in minutes on 2 cores, and derandomises them so
# a CI run is reproducible; `dev` explores more, with fresh examples every run.
# the training app (examples/trainer) is imported as `trainer`, as examples/train.py does
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

settings.register_profile(
    "ci", max_examples=20, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DEVICES = [
    "cpu",
    pytest.param(
        "gpu", marks=pytest.mark.skipif(not backend.gpu_available(), reason="CuPy or a CUDA GPU is not available")
    ),
]


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test that takes `device` runs on the CPU and, where CuPy sees a GPU, on the GPU."""
    return request.param


@pytest.fixture(params=DEVICES[1:])
def accelerator(request):
    """The backends other than the CPU, for tests that compare one with the CPU."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_library():
    th.manual_seed(0)
