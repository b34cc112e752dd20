"""SASRec / BERT4Rec and their Hydra and linear-attention variants: shapes, padding,
causality, losses against NumPy, gradients of whole models, and overfitting a batch."""
import inspect
from types import SimpleNamespace

import numpy as np
import pytest

import tinyhydra as th
from tinyhydra import models, optim
from tinyhydra.engine import backend
from tinyhydra.nn import ATTENTION_KINDS
from tinyhydra.rec.data import CausalBatch, ClozeBatch
from tinyhydra.rec.registry import MODELS

NUM_ITEMS = 7
UNI = [name for name, entry in MODELS.items() if entry.causal]
BI = [name for name, entry in MODELS.items() if not entry.causal]
NAMES = UNI + BI


def tiny_model(name, dtype=np.float64, **kwargs):
    """A 1-layer model small enough for finite differences (dropout off unless asked)."""
    th.manual_seed(0)
    options = dict(max_len=5, dim=4, num_layers=1, dropout=0.0, **heads(name))
    return models.build_model(name, NUM_ITEMS, **{**options, **kwargs}).to_dtype(dtype)


def heads(name):
    """Two heads where the model's attention defaults to a number of heads (softmax, linear);
    none where it defaults to one per feature (Hydra) or takes none (decayed Hydra)."""
    return {"num_heads": 2} if ATTENTION_KINDS[MODELS[name].attention_kind].default_heads else {}


def make_batch(model, rng, batch=3, length=5, num_negatives=2):
    """A left-padded batch for ``model``'s training task (next item, or cloze)."""
    lengths = np.array([length, 2, 3])[:batch]
    real = np.arange(length)[None, :] >= length - lengths[:, None]  # (B, L)
    items = np.where(real, rng.integers(1, NUM_ITEMS + 1, (batch, length)), 0)
    negatives = rng.integers(1, NUM_ITEMS + 1, (batch, length, num_negatives))
    if model.causal:
        targets = np.where(real, rng.integers(1, NUM_ITEMS + 1, (batch, length)), 0)
        return SimpleNamespace(inputs=items, targets=targets, negatives=negatives)
    masked = real & (rng.random((batch, length)) < 0.5)
    masked[:, -1] = True  # at least one target per row
    inputs = np.where(masked, model.mask_token, items)
    return SimpleNamespace(inputs=inputs, targets=np.where(masked, items, 0), negatives=negatives)


def numpy_scores(model, inputs):
    """h E^T (+ b) over item ids 0..num_items, written out in NumPy: (B, L, V + 1)."""
    hidden = model.encode(inputs).data
    weight = model.item_embedding.weight.data[: NUM_ITEMS + 1]
    scores = hidden @ weight.T
    return scores if model.output_bias is None else scores + model.output_bias.data


def logsumexp(x):
    top = x.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True)))[..., 0]


# --------------------------------------------------------------------- building
def test_build_model_maps_cli_names():
    """Every registered name builds its class, whose direction and attention kind the entry
    states; the paper's models are there under their CLI names."""
    for name, entry in MODELS.items():
        model = models.build_model(name, 10, max_len=4, dim=8, num_layers=1)
        assert type(model) is entry.model_class and model.attention_kind == entry.attention_kind
        assert isinstance(model, models.SASRec if entry.causal else models.BERT4Rec)
        assert entry.takes_heads == ("num_heads" in inspect.signature(entry.model_class).parameters)
        assert entry.summary.endswith(".") and "\n" not in entry.summary
        assert isinstance(model.blocks[0].attention, ATTENTION_KINDS[entry.attention_kind].layer)
    assert {(name, MODELS[name].model_class.__name__) for name in ("sasrec", "hydrarec-uni", "bert4rec",
                                                                     "hydrarec-bi")} == {
        ("sasrec", "SASRec"), ("hydrarec-uni", "HydraRecUni"), ("bert4rec", "BERT4Rec"), ("hydrarec-bi", "HydraRecBi")}
    with pytest.raises(ValueError, match="unknown model 'gru4rec'"):
        models.build_model("gru4rec", 10)
    with pytest.raises(TypeError, match="attention"):  # each class fixes its attention
        models.HydraRecUni(10, attention="softmax")
    for cls in (models.DecayedHydraRecUni, models.DecayedHydraRecBi):
        with pytest.raises(TypeError, match="num_heads"):  # one head per feature
            cls(10, num_heads=4)


def test_defaults_and_table_sizes():
    sasrec = models.SASRec(10)
    assert (sasrec.max_len, sasrec.dim, len(sasrec.blocks)) == (200, 50, 2)
    assert sasrec.item_embedding.weight.shape == (11, 50) and sasrec.output_bias is None
    bert = models.BERT4Rec(10)
    assert (bert.max_len, bert.dim, len(bert.blocks), bert.mask_prob) == (200, 64, 2, 0.2)
    assert bert.mask_token == 11 and bert.item_embedding.weight.shape == (12, 64)
    assert bert.output_bias.shape == (11,)
    assert bert.blocks[0].feed_forward.fc1.weight.shape == (256, 64)


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_and_predict_scores(name, rng):
    model = tiny_model(name, dtype=np.float32, dropout=0.3)
    batch = make_batch(model, rng)
    hidden = model.encode(batch.inputs)
    assert hidden.shape == (3, 5, 4) and hidden.dtype == np.float32
    assert model.item_scores(hidden).shape == (3, 5, NUM_ITEMS + 1)
    np.testing.assert_allclose(model.eval().item_scores(model.encode(batch.inputs)).data,
                               numpy_scores(model, batch.inputs), rtol=1e-5, atol=1e-6)
    model.train()
    scores = model.predict_scores(batch.inputs)
    assert isinstance(scores, np.ndarray) and scores.shape == (3, NUM_ITEMS + 1)
    assert model.training  # the mode is restored, and dropout was off inside
    np.testing.assert_array_equal(scores, model.predict_scores(batch.inputs))
    np.testing.assert_allclose(scores, numpy_scores(model.eval(), batch.inputs)[:, -1],
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- padding, causality
@pytest.mark.parametrize("name", NAMES)
def test_padding_never_leaks(name, rng):
    """Extra left padding, or other padded rows in the batch, change nothing at real positions."""
    model = tiny_model(name, max_len=8)
    inputs = make_batch(model, rng).inputs  # (3, 5), rows with 0, 3 and 2 padded columns
    padded = np.concatenate([np.zeros((3, 3), dtype=inputs.dtype), inputs], axis=1)  # (3, 8)
    real = inputs != 0
    np.testing.assert_allclose(model.encode(inputs).data[real],
                               model.encode(padded).data[:, 3:][real], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.predict_scores(inputs), model.predict_scores(padded),
                               rtol=1e-10, atol=1e-10)
    alone = model.encode(inputs[1:2]).data[0][real[1]]  # the same row without batch-mates
    np.testing.assert_allclose(model.encode(inputs).data[1][real[1]], alone, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_only_bidirectional_models_look_ahead(name, rng):
    model = tiny_model(name)
    inputs = rng.integers(1, NUM_ITEMS + 1, (2, 5))
    changed = inputs.copy()
    changed[:, 3:] = NUM_ITEMS + 1 - changed[:, 3:]  # different items at the last 2 positions
    before, after = model.encode(inputs).data, model.encode(changed).data
    if name in UNI:
        np.testing.assert_allclose(before[:, :3], after[:, :3], rtol=1e-10, atol=1e-12)
    else:
        assert not np.allclose(before[:, :3], after[:, :3])
    assert not np.allclose(before[:, 3:], after[:, 3:])


# ------------------------------------------------------------------------ losses
@pytest.mark.parametrize("name", ["sasrec", "hydrarec-bi"])
def test_losses_match_numpy(name, rng):
    model = tiny_model(name)
    batch = make_batch(model, rng)
    scores = numpy_scores(model, batch.inputs)  # (B, L, V + 1)
    kept = batch.targets != 0
    targets, negatives, scores = batch.targets[kept], batch.negatives[kept], scores[kept]
    rows = np.arange(len(targets))
    positive = scores[rows, targets]

    expected_ce = np.mean(logsumexp(scores[:, 1:]) - positive)  # column 0 is not a class
    candidates = np.take_along_axis(scores, np.concatenate([targets[:, None], negatives], 1), 1)
    expected_sampled = np.mean(logsumexp(candidates) - positive)
    negative = candidates[:, 1]
    expected_bce = np.mean(np.log1p(np.exp(-positive)) + np.log1p(np.exp(negative)))

    np.testing.assert_allclose(model.loss(batch, "ce").item(), expected_ce, rtol=1e-12)
    np.testing.assert_allclose(model.loss(batch, "sampled").item(), expected_sampled, rtol=1e-12)
    np.testing.assert_allclose(model.loss(batch, "bce").item(), expected_bce, rtol=1e-12)
    first = np.mean(logsumexp(candidates[:, :2]) - positive)
    np.testing.assert_allclose(model.loss(batch, "sampled", num_negatives=1).item(), first,
                               rtol=1e-12)


def test_sampled_loss_draws_negatives_when_the_batch_has_none(rng):
    model = tiny_model("bert4rec")
    batch = make_batch(model, rng)
    cloze = ClozeBatch(batch.inputs, batch.targets)  # the data pipeline's type: no negatives
    th.manual_seed(3)
    first = model.loss(cloze, "sampled", num_negatives=5).item()
    th.manual_seed(3)
    assert model.loss(cloze, "sampled", num_negatives=5).item() == first
    assert np.isfinite(model.loss(cloze, "sampled").item())  # default count


def test_loss_errors(rng):
    model = tiny_model("sasrec")
    batch = make_batch(model, rng)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        model.loss(batch, "hinge")
    with pytest.raises(ValueError, match="no target positions"):
        model.loss(SimpleNamespace(inputs=batch.inputs, targets=0 * batch.targets), "ce")
    with pytest.raises(ValueError, match="only 2 negatives"):
        model.loss(batch, "sampled", num_negatives=3)
    with pytest.raises(ValueError, match="exceed max_len=5"):
        model.encode(np.ones((1, 6), dtype=np.int64))
    with pytest.raises(IndexError, match=r"\[0, 8\)"):
        model.encode(np.array([[1, 8]]))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model.encode(np.array([1, 2]))
    bert = tiny_model("bert4rec")
    with pytest.raises(ValueError, match="item ids in 1..7"):
        bert.loss(SimpleNamespace(inputs=batch.inputs, targets=np.full((3, 5), bert.mask_token)))


def test_real_batch_types_are_accepted(rng):
    model = tiny_model("sasrec")
    batch = make_batch(model, rng, num_negatives=1)
    causal = CausalBatch(batch.inputs, batch.targets, np.where(batch.targets[..., None] > 0,
                                                                 batch.negatives, 0))
    assert np.isfinite(model.loss(causal, "bce").item())


# --------------------------------------------------------------------- gradients
def check_model_gradients(model, batch, loss):
    """Finite differences of model.loss through the item embedding (tied to the output
    layer), one attention projection and, for BERT4Rec, the output bias."""
    params = [model.item_embedding.weight, model.blocks[0].attention.query.weight]
    if model.output_bias is not None:
        params.append(model.output_bias)
    th.gradcheck(lambda *_: model.loss(batch, loss), params, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_whole_model_gradients(name, rng):
    model = tiny_model(name)
    check_model_gradients(model, make_batch(model, rng), "ce")


@pytest.mark.parametrize("name", ["sasrec", "bert4rec"])
@pytest.mark.parametrize("loss", ["sampled", "bce"])
def test_whole_model_gradients_sampled_losses(name, loss, rng):
    model = tiny_model(name)
    check_model_gradients(model, make_batch(model, rng), loss)


# ---------------------------------------------------------------- training, devices
@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_batch(name, rng):
    model = tiny_model(name, dtype=np.float32, max_len=6, dim=16)
    batch = make_batch(model, rng, length=6)
    adam = optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(40):
        adam.zero_grad()
        loss = model.loss(batch, "ce")
        loss.backward()
        adam.step()
        losses.append(loss.item())
    assert loss.dtype == np.float32 and all(p.dtype == np.float32 for p in model.parameters())
    assert losses[-1] < 0.3 * losses[0], losses[::10]


@pytest.mark.parametrize("name", NAMES)
def test_losses_and_gradients_agree_across_backends(name, accelerator, rng):
    """Each loss of a whole float64 model, and every parameter's gradient, on the
    accelerator equal the CPU's (CuPy's kernels against NumPy's, the same graph)."""
    cpu_model = tiny_model(name)
    batch = make_batch(cpu_model, rng)
    device_model = tiny_model(name).to(accelerator)
    for loss in models.LOSSES:
        answers = []
        for model in (cpu_model, device_model):
            model.zero_grad()
            th.manual_seed(3)  # the same sampled negatives for "sampled" on both
            value = model.loss(batch, loss)
            value.backward()
            answers.append((value.item(), {n: backend.as_numpy(p.grad)
                                           for n, p in model.named_parameters()}))
        (cpu_value, cpu_grads), (device_value, device_grads) = answers
        np.testing.assert_allclose(device_value, cpu_value, rtol=1e-10, err_msg=loss)
        assert device_grads.keys() == cpu_grads.keys()
        for param_name, grad in cpu_grads.items():
            np.testing.assert_allclose(device_grads[param_name], grad, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{loss}: {param_name}")


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_and_device_step(name, device, rng):
    model = tiny_model(name, dtype=np.float32, dropout=0.1).to(device)
    batch = make_batch(model, rng)
    adam = optim.Adam(model.parameters(), lr=0.01)
    for loss in models.LOSSES:
        adam.zero_grad()
        model.loss(batch, loss).backward()
        adam.step()
    assert model.device == device
    th.manual_seed(7)
    fresh = models.build_model(name, NUM_ITEMS, max_len=5, dim=4, num_layers=1, **heads(name))
    fresh.to(device).load_state_dict(model.state_dict())
    assert fresh.device == device
    np.testing.assert_array_equal(fresh.predict_scores(batch.inputs),
                                  model.predict_scores(batch.inputs))
    assert backend.device_of(model.encode(batch.inputs).data) == device


def test_the_registry_holds_the_built_in_models_however_it_is_imported():
    """Importing the registry alone (as scripts/grid_table.py does) registers the built-in models."""
    import subprocess
    import sys

    code = "from tinyhydra.rec.registry import MODELS; print(sorted(MODELS))"
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert listed.strip() == str(sorted(models.MODELS))
