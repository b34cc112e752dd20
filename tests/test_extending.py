"""Each extension point takes a new entry with one registration and nothing else to edit
(docs/extending.md walks through the same four): an attention kind, a model, a data format
and a metric, each defined here in a few lines, reach the model builder, the training
script's parser, the data loader and the evaluation. A fixture puts every registry back."""
import numpy as np
import pytest

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra import nn, optim
from tinyhydra.attention.masking import swap_last
from tinyhydra.nn import ATTENTION_KINDS
from tinyhydra.rec import data, metrics, models
from tinyhydra.rec.data import DATA_FORMATS, Interactions
from tinyhydra.rec.metrics import METRICS
from tinyhydra.rec.registry import MODELS
from trainer import cli, config

REGISTRIES = (ATTENTION_KINDS, MODELS, DATA_FORMATS, METRICS)
# the registries as the package filled them, before any test here registered something
BUILT_IN = [list(registry) for registry in REGISTRIES]


@pytest.fixture
def restore_registries():
    """Whatever a test registers is gone after it: every registry as it was."""
    saved = [dict(registry) for registry in REGISTRIES]
    yield
    for registry, entries in zip(REGISTRIES, saved):
        registry.clear()
        registry.update(entries)


def relu_linear_attention(q, k, v, *, key_mask=None):
    """Bidirectional linear attention with the feature map relu(x) + 1e-3, (B, L, D) each:
    out_i = phi(q_i) (sum_t phi(k_t)^T v_t) / (phi(q_i) . sum_t phi(k_t)), padded keys out."""
    q, k = F.relu(q) + 1e-3, F.relu(k) + 1e-3
    if key_mask is not None:
        k = k * th.Tensor(np.asarray(key_mask)[..., None].astype(k.dtype))  # (B, L, 1)
    context = swap_last(k) @ v  # (B, D, D)
    return (q @ context) / (q @ swap_last(k.sum(axis=1, keepdims=True)))  # (B, L, D) / (B, L, 1)


def register_toy_model():
    """A ReLU-kernel linear attention kind (bidirectional only) and a BERT4Rec that uses it."""
    @nn.register_attention("relu-linear", relu_linear_attention, "linear attention with relu + eps",
                           directions=("bidirectional",))
    class ReluLinearAttention(nn.ProjectedAttention):
        def __init__(self, dim, num_heads=1, dropout=0.0, **options):
            super().__init__(dim, dropout, **options)

        def attend(self, q, k, v, causal, key_mask):
            return relu_linear_attention(q, k, v, key_mask=key_mask)

    @models.register_model("relu-bi")
    class ReluRecBi(models.BERT4Rec):
        """BERT4Rec with ReLU-kernel linear attention. A toy."""

        attention_kind = "relu-linear"

    return ReluLinearAttention, ReluRecBi


def test_a_new_attention_kind_and_model_train_and_reach_the_cli(restore_registries):
    layer_class, model_class = register_toy_model()
    kind = ATTENTION_KINDS["relu-linear"]
    assert (kind.layer, kind.op, kind.default_heads, kind.directions) == (
        layer_class, relu_linear_attention, 1, ("bidirectional",))
    assert isinstance(nn.make_attention("relu-linear", 8, causal=False), layer_class)
    with pytest.raises(ValueError, match="'relu-linear' is not causal"):
        nn.make_attention("relu-linear", 8, causal=True)
    with pytest.raises(ValueError, match="relu-linear"):  # the error lists the registered kinds
        nn.make_attention("sparse", 8)
    with pytest.raises(ValueError, match="support causal attention"):  # a causal model cannot use it
        models.register_model("relu-uni")(type("ReluRecUni", (models.SASRec,), {"attention_kind": "relu-linear"}))
    entry = MODELS["relu-bi"]
    assert (entry.model_class, entry.direction, entry.attention_kind, entry.takes_heads, entry.summary) == (
        model_class, "bidirectional", "relu-linear", True, "BERT4Rec with ReLU-kernel linear attention.")

    th.manual_seed(0)
    model = models.build_model("relu-bi", 20, max_len=6, dim=8, num_layers=1, dropout=0.0)
    assert all(isinstance(block.attention, layer_class) for block in model.blocks)
    split = data.leave_one_out(data.synthetic_interactions(12, 20, 4, 8, seed=0))
    batch = next(iter(data.cloze_batches(split, 8, 6, np.random.default_rng(0), mask_token=model.mask_token)))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    before = model.blocks[0].attention.query.weight.numpy().copy()
    loss = model.loss(batch)
    loss.backward()
    optimizer.step()
    assert np.isfinite(loss.item()) and loss.item() > 0
    assert not np.array_equal(model.blocks[0].attention.query.weight.numpy(), before)  # gradients reached it

    help_text = cli.build_parser(config.Config).format_help()
    choices = help_text.split("--model {", 1)[1].split("}", 1)[0].split(",")  # --model's choices
    assert choices == list(MODELS) and choices[-1] == "relu-bi"
    bidirectional_models = config.model_help().split("bidirectional (BERT4Rec-style: ")[1].split(")")[0]
    assert bidirectional_models.split(", ") == [name for name, entry in MODELS.items() if not entry.causal]
    assert "relu-bi" in bidirectional_models
    assert config.bidirectional("relu-bi")
    parsed = config.validate(config.Config(model="relu-bi", data="x.txt", dataset=""))
    assert config.model_kwargs(parsed)["max_len"] == 200


def read_user_item_csv(path) -> Interactions:
    """``user,item`` lines under a ``user,item`` header: ids 1..n, in time order per user."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    sequences = [rows[rows[:, 0] == user, 1] for user in range(1, rows[:, 0].max() + 1)]
    return Interactions(sequences, len(sequences), int(rows[:, 1].max()))


def test_a_new_data_format_is_read_by_name_and_by_content(restore_registries, tmp_path):
    data.register_data_format("user-item-csv", read_user_item_csv, "`user,item` under a header",
                              lambda path, lines: len(lines) > 0 and lines[0].strip() == "user,item")
    path = tmp_path / "log.data"  # a name that says nothing: the content does
    path.write_text("user,item\n1,3\n1,2\n2,1\n2,3\n2,2\n")
    assert data.detect_format(path) == "user-item-csv"
    for data_format in ("auto", "user-item-csv"):
        read = data.load_dataset(path, data_format)
        assert [s.tolist() for s in read.sequences] == [[3, 2], [1, 3, 2]] and read.num_items == 3
    assert data.detect_format(tmp_path / "ratings.zip") == "movielens"  # the built-in ones still first
    assert "user-item-csv" in config.data_format_choices()
    assert "user-item-csv" in cli.build_parser(config.Config).format_help()
    config.validate(config.Config(data=str(path), dataset="", data_format="user-item-csv"))


def test_a_new_metric_is_computed_wherever_metrics_are(restore_registries):
    @metrics.register_metric("ToyRecall", "the target among the top k (one target: the hit rate)", ks=(20,))
    def recall(ranks, k):
        return ranks < k

    assert metrics.metric_names()[-1] == "ToyRecall@20" and "ToyRecall@10" not in metrics.metric_names()
    ranks = np.array([0, 12, 19, 20, 300])
    assert metrics.metrics_from_ranks(ranks)["ToyRecall@20"] == 0.6
    assert metrics.per_user_values(ranks, "ToyRecall@20").tolist() == [True, True, True, False, False]
    with pytest.raises(ValueError, match="ToyRecall@K"):
        metrics.per_user_values(ranks, "ToyRecall")

    th.manual_seed(0)
    split = data.leave_one_out(data.synthetic_interactions(30, 150, 4, 10, seed=1))
    model = models.build_model("sasrec", split.num_items, max_len=8, dim=8, num_layers=1)
    evaluated = metrics.evaluate(model.predict_scores, split, "test", 8)
    ranks = metrics.evaluation_ranks(model.predict_scores, split, "test", 8)
    for protocol in ("full", "sampled"):
        assert evaluated[f"{protocol}/ToyRecall@20"] == float(np.mean(ranks[protocol] < 20))
        assert evaluated[f"{protocol}/ToyRecall@20"] == metrics.metrics_from_ranks(ranks[protocol], ks=(20,))["HR@20"]


def test_the_fixture_left_the_built_in_entries():
    assert [list(registry) for registry in REGISTRIES] == BUILT_IN
    assert "relu-bi" not in MODELS and "user-item-csv" not in DATA_FORMATS and "ToyRecall" not in METRICS
