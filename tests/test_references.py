"""The NumPy reference graphs against the TF graphs that produced real checkpoints, and against
transformers as a second, independent implementation.

1. Upstream checkpoints (built with the unmodified TF code of google-research/bert,
   google-research/albert and brightmart/albert_zh) ship the outputs TF computed; each reference
   must reproduce all of them to 1e-5 with the tanh GELU that code uses.
2. The comparison must be sensitive: the erf GELU, or a checkpoint read with two tensors
   swapped, has to move the outputs well past the tolerance.
3. Tiny random transformers models, read back under their TF names (MAPPING.md), must give the
   same outputs through the references as through torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tf2hf.verify.references import FAMILIES, albert, bert, brightmart
from tf2hf.verify.references.blocks import attention_bias
from tf2hf.verify.references.heads import gather_positions
from tf2hf.verify.references.numerics import (
    LAYER_NORM_EPSILON,
    gelu_erf,
    gelu_tanh,
    layer_norm,
    log_softmax,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CHECKPOINTS = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoints"
UPSTREAM = CHECKPOINTS / "upstream"
UPSTREAM_CASES = ["bert_pre", "albert_g1i1", "bright_postln"]
TOLERANCE = 1e-5

Getter = Callable[[str], np.ndarray]


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def dict_getter(variables: dict[str, np.ndarray]) -> Getter:
    """A ``get`` over a dict that, like the engine's, raises KeyError for absent names."""

    def get(name: str) -> np.ndarray:
        return variables[name]

    return get


# --- upstream checkpoints ------------------------------------------------------------------


class Upstream:
    """One upstream checkpoint: its variables, config, family and the outputs TF computed."""

    def __init__(self, folder: Path):
        tf = pytest.importorskip("tensorflow")
        meta = json.loads((folder / "meta.json").read_text())
        (config_file,) = folder.glob("*_config.json")
        self.folder = folder
        self.prefix = str(folder / "model.ckpt")
        self.config = json.loads(config_file.read_text())
        self.module = FAMILIES[meta["family"]]
        reader = tf.train.load_checkpoint(self.prefix)
        self.variables = {
            name: reader.get_tensor(name) for name, _ in tf.train.list_variables(self.prefix)
        }
        self.data = dict(np.load(folder / "tf_outputs.npz"))
        self.pair = "sop" if "sop_log_probs" in self.data else "nsp"
        self.heads = frozenset({"pooler", "mlm", self.pair})
        self.inputs = {
            key: self.data[key]
            for key in ("input_ids", "input_mask", "token_type_ids", "positions")
        }

    def run(self, get: Getter | None = None, gelu: str = "tanh") -> dict[str, np.ndarray]:
        get = get or dict_getter(self.variables)
        return self.module.forward(get, self.config, self.inputs, gelu=gelu, heads=self.heads)

    def differences(self, out: dict[str, np.ndarray]) -> dict[str, float]:
        """Max abs difference of each stored TF output (log-probs for the logit heads)."""
        pair = self.pair
        return {
            "sequence_output": max_abs(out["sequence_output"], self.data["sequence_output"]),
            "pooled_output": max_abs(out["pooled_output"], self.data["pooled_output"]),
            "mlm_log_probs": max_abs(log_softmax(out["mlm_logits"]), self.data["mlm_log_probs"]),
            f"{pair}_log_probs": max_abs(
                log_softmax(out[f"{pair}_logits"]), self.data[f"{pair}_log_probs"]
            ),
        }


_UPSTREAM_CACHE: dict[str, Upstream] = {}


def load_upstream(case: str) -> Upstream:
    """Load (once per session) an upstream checkpoint, or skip when the folder is absent."""
    folder = UPSTREAM / case
    if not (folder / "tf_outputs.npz").is_file():
        pytest.skip(f"upstream checkpoint folder {folder} is not available")
    if case not in _UPSTREAM_CACHE:
        _UPSTREAM_CACHE[case] = Upstream(folder)
    return _UPSTREAM_CACHE[case]


@pytest.fixture(params=UPSTREAM_CASES)
def upstream(request) -> Upstream:
    return load_upstream(request.param)


def test_reference_reproduces_tf_outputs(upstream: Upstream) -> None:
    diffs = upstream.differences(upstream.run(gelu="tanh"))
    assert set(diffs) == {key for key in upstream.data if key.endswith(("_output", "_probs"))}
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_erf_gelu_is_measurably_different(upstream: Upstream) -> None:
    diffs = upstream.differences(upstream.run(gelu="erf"))
    assert min(diffs.values()) > 1e-6, diffs


def test_config_without_embedding_size_or_groups_is_enough(upstream: Upstream) -> None:
    """Sizes that shapes determine must come from the shapes, not the (often partial) config."""
    config = {
        key: value
        for key, value in upstream.config.items()
        if key not in {"embedding_size", "num_hidden_groups", "inner_group_num", "hidden_size"}
    }
    out = upstream.module.forward(
        dict_getter(upstream.variables), config, upstream.inputs, gelu="tanh",
        heads=upstream.heads,
    )
    assert max(upstream.differences(out).values()) <= TOLERANCE


def _swapped(get: Getter, first: str, second: str) -> Getter:
    def swapped_get(name: str) -> np.ndarray:
        return get({first: second, second: first}.get(name, name))

    return swapped_get


def _transformed(get: Getter, target: str, change: Callable[[np.ndarray], np.ndarray]) -> Getter:
    def transformed_get(name: str) -> np.ndarray:
        value = get(name)
        return change(value) if name == target else value

    return transformed_get


_BERT_L0 = "bert/encoder/layer_0"
_ALBERT_B0 = "bert/encoder/transformer/group_0/inner_group_0"
_SHARED = "bert/encoder/layer_shared"

#: (case, description, get -> miswired get, output that must move by more than 1e-3)
MISWIRINGS = [
    ("bert_pre", "query/key kernels swapped",
     lambda g: _swapped(g, f"{_BERT_L0}/attention/self/query/kernel",
                        f"{_BERT_L0}/attention/self/key/kernel"), "sequence_output"),
    ("bert_pre", "attention/output LayerNorm swapped",
     lambda g: _swapped(g, f"{_BERT_L0}/attention/output/LayerNorm/gamma",
                        f"{_BERT_L0}/output/LayerNorm/gamma"), "sequence_output"),
    ("bert_pre", "pooler kernel transposed",
     lambda g: _transformed(g, "bert/pooler/dense/kernel", np.transpose), "pooled_output"),
    ("bert_pre", "NSP rows swapped",
     lambda g: _transformed(g, "cls/seq_relationship/output_weights", np.flipud),
     "nsp_log_probs"),
    ("bert_pre", "MLM transform kernel transposed",
     lambda g: _transformed(g, "cls/predictions/transform/dense/kernel", np.transpose),
     "mlm_log_probs"),
    ("albert_g1i1", "query/key kernels swapped",
     lambda g: _swapped(g, f"{_ALBERT_B0}/attention_1/self/query/kernel",
                        f"{_ALBERT_B0}/attention_1/self/key/kernel"), "sequence_output"),
    ("albert_g1i1", "LayerNorm and LayerNorm_1 swapped",
     lambda g: _swapped(g, f"{_ALBERT_B0}/LayerNorm/gamma", f"{_ALBERT_B0}/LayerNorm_1/gamma"),
     "sequence_output"),
    ("albert_g1i1", "SOP rows swapped",
     lambda g: _transformed(g, "cls/seq_relationship/output_weights", np.flipud),
     "sop_log_probs"),
    ("albert_g1i1", "MLM output bias reversed",
     lambda g: _transformed(g, "cls/predictions/output_bias", lambda a: a[::-1]),
     "mlm_log_probs"),
    ("bright_postln", "query/key kernels swapped",
     lambda g: _swapped(g, f"{_SHARED}/attention/self/query/kernel",
                        f"{_SHARED}/attention/self/key/kernel"), "sequence_output"),
    ("bright_postln", "embedding projection rows reversed",
     lambda g: _transformed(g, "bert/embeddings/word_embeddings_2", np.flipud),
     "sequence_output"),
    ("bright_postln", "NSP rows swapped",
     lambda g: _transformed(g, "cls/seq_relationship/output_weights", np.flipud),
     "nsp_log_probs"),
]


@pytest.mark.parametrize(
    ("case", "description", "miswire", "output"),
    MISWIRINGS,
    ids=[f"{case}-{description}" for case, description, _, _ in MISWIRINGS],
)
def test_miswired_checkpoint_is_detected(case, description, miswire, output) -> None:
    checkpoint = load_upstream(case)
    diffs = checkpoint.differences(checkpoint.run(miswire(dict_getter(checkpoint.variables))))
    assert diffs[output] > 1e-3, (description, diffs)


def test_project_reader_gives_the_same_outputs(upstream: Upstream) -> None:
    """When tf2hf's own TF-free reader is present, it must feed the references identically."""
    try:
        from tf2hf.tfckpt import open_checkpoint
    except ImportError:
        pytest.skip("tf2hf.tfckpt.open_checkpoint is not available")
    checkpoint = open_checkpoint(upstream.prefix)

    def get(name: str) -> np.ndarray:
        if name not in upstream.variables:
            raise KeyError(name)
        return checkpoint.read(name)

    reference = upstream.run()
    for key, value in upstream.run(get).items():
        np.testing.assert_array_equal(value, reference[key])


# --- small unit checks ---------------------------------------------------------------------


def test_activation_formulas() -> None:
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0])
    # x * Phi(x) at x = 1: Phi(1) = 0.8413447460685429
    assert gelu_erf(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, abs=1e-15)
    expected_tanh = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_tanh(x), expected_tanh, rtol=0, atol=1e-15)
    assert 1e-5 < max_abs(gelu_erf(x), gelu_tanh(x)) < 1e-2


def test_layer_norm_uses_population_variance_and_tiny_epsilon() -> None:
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    out = layer_norm(x, np.ones(4), np.zeros(4))
    expected = (x - 3.0) / np.sqrt(np.var(x) + LAYER_NORM_EPSILON)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    # A constant row stays finite: the epsilon is added inside the square root.
    assert np.all(layer_norm(np.full((1, 4), 5.0), np.ones(4), np.zeros(4)) == 0.0)


def test_attention_bias_masks_keys_with_minus_10000() -> None:
    bias = attention_bias(np.array([[1, 1, 0]]))
    assert bias.shape == (1, 1, 1, 3)
    assert bias.ravel().tolist() == [0.0, 0.0, -10000.0]


def test_gather_positions_is_row_major_over_batch() -> None:
    seq = np.arange(2 * 4 * 1, dtype=np.float64).reshape(2, 4, 1)
    rows = gather_positions(seq, np.array([[3, 0], [1, 2]]))
    assert rows.ravel().tolist() == [3.0, 0.0, 5.0, 6.0]


@pytest.mark.parametrize(
    ("module", "heads"),
    [(bert, {"sop"}), (albert, {"nsp"}), (brightmart, {"sop"}), (bert, {"pooled"})],
)
def test_heads_a_family_lacks_are_refused(module, heads) -> None:
    with pytest.raises(ValueError):
        module.forward(dict_getter({}), {}, {}, gelu="tanh", heads=frozenset(heads))


def test_unknown_activation_and_pre_ln_are_refused() -> None:
    with pytest.raises(ValueError, match="activation"):
        bert.forward(dict_getter({}), {}, {}, gelu="swish", heads=frozenset())
    with pytest.raises(ValueError, match="post-LN"):
        brightmart.forward(dict_getter({}), {"ln_type": "preln"}, {}, gelu="tanh",
                           heads=frozenset())


# --- transformers as a second implementation ------------------------------------------------

HF_ACTIVATIONS = [("gelu_new", "tanh"), ("gelu", "erf"), ("relu", "relu")]


def random_inputs(vocab_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Three sequences of 9 tokens, two of them padded; three MLM positions per row."""
    rng = np.random.default_rng(seed)
    batch, seq = 3, 9
    lengths = np.array([9, 6, 4])
    input_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    input_ids = rng.integers(1, vocab_size, size=(batch, seq)) * input_mask
    token_type_ids = ((np.arange(seq)[None, :] >= lengths[:, None] // 2) * input_mask)
    positions = np.stack([rng.choice(length, size=3, replace=False) for length in lengths])
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "token_type_ids": token_type_ids.astype(np.int64),
        "positions": positions.astype(np.int64),
    }


def randomize(model, seed: int = 0) -> None:
    """Give every parameter a non-trivial value (default init leaves LayerNorms at 1/0)."""
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                parameter.copy_(1.0 + 0.2 * noise)
            else:
                parameter.copy_(0.3 * noise)
    model.eval()


class TFView:
    """Builds the TF-named arrays of a transformers state dict, following MAPPING.md."""

    def __init__(self, model):
        self.state = {k: v.detach().numpy().astype(np.float32) for k, v in
                      model.state_dict().items()}
        self.variables: dict[str, np.ndarray] = {}
        self.used: set[str] = set()

    def take(self, hf_key: str) -> np.ndarray:
        self.used.add(hf_key)
        return self.state[hf_key]

    def plain(self, tf_name: str, hf_key: str) -> None:
        self.variables[tf_name] = self.take(hf_key)

    def linear(self, tf_scope: str, hf_prefix: str) -> None:
        """A ``torch.nn.Linear`` ``[out, in]`` becomes a TF kernel ``[in, out]`` plus bias."""
        self.variables[f"{tf_scope}/kernel"] = np.ascontiguousarray(
            self.take(f"{hf_prefix}.weight").T)
        self.plain(f"{tf_scope}/bias", f"{hf_prefix}.bias")

    def norm(self, tf_scope: str, hf_prefix: str) -> None:
        self.plain(f"{tf_scope}/gamma", f"{hf_prefix}.weight")
        self.plain(f"{tf_scope}/beta", f"{hf_prefix}.bias")

    def embeddings(self, hf_prefix: str) -> None:
        for kind in ("word", "position", "token_type"):
            self.plain(f"bert/embeddings/{kind}_embeddings",
                       f"{hf_prefix}.{kind}_embeddings.weight")
        self.norm("bert/embeddings/LayerNorm", f"{hf_prefix}.LayerNorm")

    def heads_as_output_weights(self, tf_scope: str, hf_prefix: str) -> None:
        """Heads TF stores ``[out, in]`` like torch: copied without transposing."""
        prefix = f"{tf_scope}/" if tf_scope else ""
        self.plain(f"{prefix}output_weights", f"{hf_prefix}.weight")
        self.plain(f"{prefix}output_bias", f"{hf_prefix}.bias")

    def finish(self, ignored: set[str] = frozenset()) -> dict[str, np.ndarray]:
        """Every weight of the model must have been given a TF name (or be tied/ignored)."""
        leftover = {
            key for key in self.state
            if key not in self.used and key not in ignored and ".decoder." not in key
        }
        assert not leftover, f"weights without a TF name: {sorted(leftover)}"
        return self.variables


def bert_tf_view(model, base: str = "bert") -> dict[str, np.ndarray]:
    view = TFView(model)
    view.embeddings(f"{base}.embeddings")
    for i in range(model.config.num_hidden_layers):
        hf, tf = f"{base}.encoder.layer.{i}", f"bert/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            view.linear(f"{tf}/attention/self/{part}", f"{hf}.attention.self.{part}")
        view.linear(f"{tf}/attention/output/dense", f"{hf}.attention.output.dense")
        view.norm(f"{tf}/attention/output/LayerNorm", f"{hf}.attention.output.LayerNorm")
        view.linear(f"{tf}/intermediate/dense", f"{hf}.intermediate.dense")
        view.linear(f"{tf}/output/dense", f"{hf}.output.dense")
        view.norm(f"{tf}/output/LayerNorm", f"{hf}.output.LayerNorm")
    if f"{base}.pooler.dense.weight" in view.state:
        view.linear("bert/pooler/dense", f"{base}.pooler.dense")
    if "cls.predictions.bias" in view.state:
        view.linear("cls/predictions/transform/dense", "cls.predictions.transform.dense")
        view.norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm")
        view.plain("cls/predictions/output_bias", "cls.predictions.bias")
    if "cls.seq_relationship.weight" in view.state:
        view.heads_as_output_weights("cls/seq_relationship", "cls.seq_relationship")
    if "classifier.weight" in view.state:
        view.heads_as_output_weights("", "classifier")
    if "qa_outputs.weight" in view.state:
        view.heads_as_output_weights("cls/squad", "qa_outputs")
    return view.finish()


def albert_tf_view(model, base: str = "albert") -> dict[str, np.ndarray]:
    """Google ALBERT names; the E -> H mapping is left out when E == H, as TF does."""
    config = model.config
    view = TFView(model)
    view.embeddings(f"{base}.embeddings")
    ignored = set()
    mapping = f"{base}.encoder.embedding_hidden_mapping_in"
    if config.embedding_size != config.hidden_size:
        view.linear("bert/encoder/embedding_hidden_mapping_in", mapping)
    else:
        ignored |= {f"{mapping}.weight", f"{mapping}.bias"}
    for g in range(config.num_hidden_groups):
        for j in range(config.inner_group_num):
            hf = f"{base}.encoder.albert_layer_groups.{g}.albert_layers.{j}"
            tf = f"bert/encoder/transformer/group_{g}/inner_group_{j}"
            for part in ("query", "key", "value"):
                view.linear(f"{tf}/attention_1/self/{part}", f"{hf}.attention.{part}")
            view.linear(f"{tf}/attention_1/output/dense", f"{hf}.attention.dense")
            view.norm(f"{tf}/LayerNorm", f"{hf}.attention.LayerNorm")
            view.linear(f"{tf}/ffn_1/intermediate/dense", f"{hf}.ffn")
            view.linear(f"{tf}/ffn_1/intermediate/output/dense", f"{hf}.ffn_output")
            view.norm(f"{tf}/LayerNorm_1", f"{hf}.full_layer_layer_norm")
    if f"{base}.pooler.weight" in view.state:
        view.linear("bert/pooler/dense", f"{base}.pooler")
    if "predictions.bias" in view.state:
        view.linear("cls/predictions/transform/dense", "predictions.dense")
        view.norm("cls/predictions/transform/LayerNorm", "predictions.LayerNorm")
        view.plain("cls/predictions/output_bias", "predictions.bias")
    if "sop_classifier.classifier.weight" in view.state:
        view.heads_as_output_weights("cls/seq_relationship", "sop_classifier.classifier")
    if "classifier.weight" in view.state:
        view.heads_as_output_weights("", "classifier")
    if "qa_outputs.weight" in view.state:
        view.heads_as_output_weights("cls/squad", "qa_outputs")
    return view.finish(ignored)


def torch_run(model, inputs: dict[str, np.ndarray]):
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        return model(
            input_ids=torch.from_numpy(inputs["input_ids"]),
            attention_mask=torch.from_numpy(inputs["input_mask"]),
            token_type_ids=torch.from_numpy(inputs["token_type_ids"]),
        )


def hf_gathered(logits, positions: np.ndarray) -> np.ndarray:
    """transformers scores every position; keep the MLM ones, in gather_indexes order."""
    return gather_positions(logits.numpy().astype(np.float64), positions)


def assert_close(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    diffs = {key: max_abs(ours[key], theirs[key]) for key in theirs}
    assert max(diffs.values()) <= TOLERANCE, diffs


SMALL = dict(vocab_size=40, hidden_size=16, num_attention_heads=4, intermediate_size=24,
             max_position_embeddings=12, type_vocab_size=2)


def _tf_config(hf_config, **extra) -> dict:
    """The TF config JSON the checkpoint would have carried (the references read only this)."""
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size")
    return {key: getattr(hf_config, key) for key in keys} | extra


@pytest.mark.parametrize(("hidden_act", "gelu"), HF_ACTIVATIONS)
def test_bert_reference_matches_transformers_pretraining(hidden_act, gelu) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(num_hidden_layers=2, hidden_act=hidden_act, **SMALL)
    model = transformers.BertForPreTraining(config)
    randomize(model)
    inputs = random_inputs(config.vocab_size)
    heads = frozenset({"pooler", "mlm", "nsp"})
    ours = bert.forward(dict_getter(bert_tf_view(model)), _tf_config(config), inputs,
                        gelu=gelu, heads=heads)
    base = torch_run(model.bert, inputs)
    full = torch_run(model, inputs)
    assert_close(ours, {
        "sequence_output": base.last_hidden_state.numpy(),
        "pooled_output": base.pooler_output.numpy(),
        "mlm_logits": hf_gathered(full.prediction_logits, inputs["positions"]),
        "nsp_logits": full.seq_relationship_logits.numpy(),
    })


@pytest.mark.parametrize("task", ["classifier", "squad"])
def test_bert_reference_matches_transformers_finetuned_heads(task) -> None:
    transformers = pytest.importorskip("transformers")
    # run_squad's head has exactly two rows (start, end); the classifier gets three labels.
    num_labels = 3 if task == "classifier" else 2
    config = transformers.BertConfig(num_hidden_layers=2, hidden_act="gelu",
                                     num_labels=num_labels, **SMALL)
    model_class = {"classifier": transformers.BertForSequenceClassification,
                   "squad": transformers.BertForQuestionAnswering}[task]
    model = model_class(config)
    randomize(model, seed=1)
    inputs = random_inputs(config.vocab_size, seed=1)
    ours = bert.forward(dict_getter(bert_tf_view(model)), _tf_config(config), inputs,
                        gelu="erf", heads=frozenset({task}))
    out = torch_run(model, inputs)
    if task == "classifier":
        assert_close(ours, {"classifier_logits": out.logits.numpy()})
    else:
        assert_close(ours, {"start_logits": out.start_logits.numpy(),
                            "end_logits": out.end_logits.numpy()})


ALBERT_LAYOUTS = {
    # E != H, layers spread over 2 groups of 2 inner blocks: group of layer i = int(i/3*2).
    "E8-H16-L3-G2-I2": dict(embedding_size=8, num_hidden_layers=3, num_hidden_groups=2,
                            inner_group_num=2),
    # E == H: TF has no embedding_hidden_mapping_in; transformers gets an identity.
    "E16-H16-L2-G1-I1": dict(embedding_size=16, num_hidden_layers=2, num_hidden_groups=1,
                             inner_group_num=1),
}


def _identity_mapping(model) -> None:
    torch = pytest.importorskip("torch")
    mapping = model.albert.encoder.embedding_hidden_mapping_in
    with torch.no_grad():
        mapping.weight.copy_(torch.eye(mapping.weight.shape[0]))
        mapping.bias.zero_()


@pytest.mark.parametrize("layout", sorted(ALBERT_LAYOUTS))
@pytest.mark.parametrize(("hidden_act", "gelu"), HF_ACTIVATIONS)
def test_albert_reference_matches_transformers_pretraining(layout, hidden_act, gelu) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.AlbertConfig(hidden_act=hidden_act, **SMALL, **ALBERT_LAYOUTS[layout])
    model = transformers.AlbertForPreTraining(config)
    randomize(model, seed=2)
    if config.embedding_size == config.hidden_size:
        _identity_mapping(model)
    inputs = random_inputs(config.vocab_size, seed=2)
    ours = albert.forward(dict_getter(albert_tf_view(model)), _tf_config(config), inputs,
                          gelu=gelu, heads=frozenset({"pooler", "mlm", "sop"}))
    base = torch_run(model.albert, inputs)
    full = torch_run(model, inputs)
    assert_close(ours, {
        "sequence_output": base.last_hidden_state.numpy(),
        "pooled_output": base.pooler_output.numpy(),
        "mlm_logits": hf_gathered(full.prediction_logits, inputs["positions"]),
        "sop_logits": full.sop_logits.numpy(),
    })


@pytest.mark.parametrize("task", ["classifier", "squad"])
def test_albert_reference_matches_transformers_finetuned_heads(task) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.AlbertConfig(hidden_act="gelu_new", num_labels=2, **SMALL,
                                       **ALBERT_LAYOUTS["E8-H16-L3-G2-I2"])
    model_class = {"classifier": transformers.AlbertForSequenceClassification,
                   "squad": transformers.AlbertForQuestionAnswering}[task]
    model = model_class(config)
    randomize(model, seed=3)
    inputs = random_inputs(config.vocab_size, seed=3)
    ours = albert.forward(dict_getter(albert_tf_view(model)), _tf_config(config), inputs,
                          gelu="tanh", heads=frozenset({task}))
    out = torch_run(model, inputs)
    if task == "classifier":
        assert_close(ours, {"classifier_logits": out.logits.numpy()})
    else:
        assert_close(ours, {"start_logits": out.start_logits.numpy(),
                            "end_logits": out.end_logits.numpy()})


def test_brightmart_reference_matches_folded_albert() -> None:
    """brightmart's graph equals an ALBERT with folded word embeddings (MAPPING.md §4, route 1)."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config = transformers.AlbertConfig(hidden_act="gelu_new", embedding_size=16,
                                       num_hidden_layers=3, num_hidden_groups=1,
                                       inner_group_num=1, **SMALL)
    model = transformers.AlbertForPreTraining(config)
    randomize(model, seed=4)
    _identity_mapping(model)
    rng = np.random.default_rng(4)
    words = (0.5 * rng.standard_normal((config.vocab_size, 6))).astype(np.float32)
    projection = (0.5 * rng.standard_normal((6, config.hidden_size))).astype(np.float32)
    folded = words.astype(np.float64) @ projection.astype(np.float64)
    with torch.no_grad():
        model.albert.embeddings.word_embeddings.weight.copy_(torch.from_numpy(folded))

    albert_names = albert_tf_view(model)
    block = "bert/encoder/transformer/group_0/inner_group_0/"
    renames = {"attention_1/": "attention/", "LayerNorm_1/": "output/LayerNorm/",
               "LayerNorm/": "attention/output/LayerNorm/",
               "ffn_1/intermediate/output/": "output/", "ffn_1/intermediate/": "intermediate/"}
    variables = {}
    for name, value in albert_names.items():
        if name.startswith(block):
            rest = name[len(block):]
            for old, new in renames.items():
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            name = f"{brightmart.SHARED_LAYER}/{rest}"
        variables[name] = value
    variables["bert/embeddings/word_embeddings"] = words
    variables["bert/embeddings/word_embeddings_2"] = projection

    inputs = random_inputs(config.vocab_size, seed=4)
    ours = brightmart.forward(dict_getter(variables),
                              _tf_config(config, embedding_size=6, ln_type="postln"), inputs,
                              gelu="tanh", heads=frozenset({"pooler", "mlm", "nsp"}))
    base = torch_run(model.albert, inputs)
    full = torch_run(model, inputs)
    assert_close(ours, {
        "sequence_output": base.last_hidden_state.numpy(),
        "pooled_output": base.pooler_output.numpy(),
        "mlm_logits": hf_gathered(full.prediction_logits, inputs["positions"]),
        "nsp_logits": full.sop_logits.numpy(),
    })
