"""Every folder of ../shared/checkpoints/real-index/ planned as a user would plan it.

Each row is what that folder's README row says a user needs from the planner
(``tf2hf convert auto --tf FOLDER --dry-run``): the class written, or a refusal and why.
Rows that need work not built yet are strict xfails naming what is missing, so they start
failing the moment they are met and must then become plain rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

from support import FIXTURES, SHARED
from tf2hf.cli import app

BASE = SHARED / "real-index"


@dataclass(frozen=True)
class Row:
    folder: str
    args: tuple[str, ...] = ()
    cls: str | None = None  # the class written; None: refused
    refusal: tuple[str, ...] = ()  # phrases the one-line refusal must hold
    notes: tuple[str, ...] = ()  # phrases a note or warning must hold
    missing: str | None = None  # not built yet: why (a strict xfail)
    config: str | None = None  # a config kept elsewhere in the folder, relative to it
    extra: dict = field(default_factory=dict, hash=False)


ROWS = [
    # Released and pre-training checkpoints.
    Row("heytgala-bert_tiny_L2_H128", cls="BertForPreTraining"),
    Row("heytgala-bert_tiny_pretrain_step20", cls="BertForPreTraining"),
    Row("heytgala-bert_tiny_mrpc_classifier", cls="BertForSequenceClassification"),
    Row("heytgala-bert_tiny_squad", cls="BertForQuestionAnswering"),
    Row("pyxz-google_chinese_L-12_H-768_A-12", cls="BertForPreTraining"),
    Row("paolanu-protein_bert_step40000", cls="BertForPreTraining"),
    Row("sgrwang-dna_bert_3mer_step200000", cls="BertForPreTraining"),
    Row("jadepeng-albert_base_zh_google_best", cls="AlbertForPreTraining"),
    Row("jadepeng-albert_tiny_zh", cls="AlbertForPreTraining"),
    Row("marsroger-albert_tiny_zh", cls="AlbertForPreTraining"),
    Row("liam1015-albert_base_zh_brightmart", cls="AlbertForPreTraining"),
    Row("CyberZHG-keras-bert-test_checkpoint", cls="BertForPreTraining"),
    Row("llSiddharthll-Bert-bert_model", cls="BertForPreTraining"),
    Row("gczr-ALBERT_NER_KERAS-albert_tiny", cls="AlbertForPreTraining"),
    Row("whongzhong-Albert-ner-albert_tiny", cls="AlbertForPreTraining"),
    # Snappy-compressed index blocks.
    Row("34127chi-albert_zh_sr-albert_tiny_zh_google", cls="AlbertForPreTraining"),
    Row("rohan400-distilbert-squad-model.ckpt-6910", cls="BertForQuestionAnswering"),
    Row("rohan400-distilbert-squad-bert_model", cls="BertForQuestionAnswering"),
    # Fine-tunes without a config beside them.
    Row("Jerrykuo0310-NLP-model.ckpt-2827", config="config_supplied/bert_config.json", cls="BertForSequenceClassification"),
    Row("34127chi-albert_zh_sr-lcqmc_tiny_ckpt-149228", refusal=("no config JSON found", "--config")),
    Row("34127chi-albert_zh_sr-lcqmc_tiny_ckpt-149228", config="config_from_repo/albert_config_tiny_g.json", cls="AlbertModel"),
    # SavedModel exports (their variables/ folder).
    Row("34127chi-albert_zh_sr-export_1576126868_variables", config="config_from_repo/albert_config_tiny_g.json", cls="AlbertModel"),
    Row("jojolin-albert_zh-export_1574903339_variables", config="config_from_repo/albert_config_base.json",
        cls="AlbertForSequenceClassification", notes=("token-classification",)),
    Row("ahzz1207-ALBERT-TINYBERT-savedmodel_3_variables", config="config_from_repo/albert_config.json", cls="AlbertForMaskedLM",
        notes=("not used: pooler",)),
    # Heads: per-token tagging, heads no class holds.
    Row("jojolin-albert_zh-remy_lac_ckpt-18748", config="config_from_repo/albert_config_tiny.json",
        cls="AlbertForSequenceClassification", notes=("token-classification",)),
    Row("jojolin-albert_zh-remy_lac_ckpt-18748", config="config_from_repo/albert_config_tiny.json",
        args=("--task", "token-classification"), cls="AlbertForTokenClassification"),
    Row("whongzhong-Albert-ner-ner-4000", config="config_from_repo/albert_config.json",
        refusal=("bi-lstm0/ (4 variables)", "crf_loss/ (1 variable)", "final_output_layer/ (2 variables)", "output_layer0/ (2 variables)",
                 "look like a head", "--task feature-extraction", "extra_weights.safetensors")),
    Row("whongzhong-Albert-ner-ner-4000", config="config_from_repo/albert_config.json",
        args=("--task", "feature-extraction"), cls="AlbertModel", notes=("kept aside in extra_weights.safetensors", "bi-lstm0/ (4 variables)"),
        extra={"extra_weights": 9}),
    # A vocabulary shorter than the embedding matrix.
    Row("yiqichen-2000-BERTE-BERTMini", cls="BertForPreTraining", notes=("21849", "30522")),
    # TF2 / Keras layouts (issue 15).
    # bert-for-tf2 BERT with no config kept: every size is in a shape but the head count, so the
    # user says that one (BERT-base's 12); without it the refusal says what is missing.
    Row("DjebbiAmine-Senti-BERT-bert_model", args=("--task", "feature-extraction"),
        refusal=("number of attention heads", "--config")),
    Row("DjebbiAmine-Senti-BERT-bert_model", args=("--task", "feature-extraction"), cls="BertModel",
        config=str(FIXTURES / "keras_user_configs" / "heads_only_12.json")),
    # No config.json was kept: the head count is in no shape, so the user passes the config of the
    # model they fine-tuned (BERT-base uncased: vocab 30522, 12 layers, 768 wide, 12 heads).
    Row("chen1ting-CZ4045-training_sub_cp.ckpt", args=("--task", "feature-extraction"),
        refusal=("no config JSON found", "number of attention heads", "--config")),
    Row("chen1ting-CZ4045-training_sub_cp.ckpt", args=("--task", "feature-extraction"), cls="BertModel",
        config=str(FIXTURES / "keras_user_configs" / "bert_base_uncased.json"), notes=("left out: Dense layer beside the model",)),
    Row("chen1ting-CZ4045-training_sub_cp.ckpt", args=("--task", "text-classification"), cls="BertForSequenceClassification",
        config=str(FIXTURES / "keras_user_configs" / "bert_base_uncased.json")),
    Row("chen1ting-CZ4045-training_sub_cp.ckpt", config=str(FIXTURES / "keras_user_configs" / "bert_base_uncased.json"),
        refusal=("Dense layer beside the model (layer_with_weights-1)", "--task text-classification")),
]


def _params():
    for row in ROWS:
        marks = [pytest.mark.xfail(strict=True, reason=row.missing)] if row.missing else []
        label = row.folder + ("[" + " ".join(row.args) + "]" if row.args else "") + ("+config" if row.config else "")
        yield pytest.param(row, id=label, marks=marks)


@pytest.mark.parametrize("row", list(_params()))
def test_real_index_folder_plans_as_its_readme_row_says(row):
    folder = BASE / row.folder
    if not folder.is_dir():
        pytest.skip(f"{folder} is not available")
    args = ["convert", "auto", "--tf", str(folder), "--dry-run", "--json", *row.args]
    if row.config:
        args += ["--config", str(folder / row.config)]
    result = CliRunner().invoke(app, args)
    if row.cls is None:
        # --json: the refusal is a JSON object on stdout; its message is one line.
        assert result.exit_code == 1, result.output
        message = json.loads(result.stdout)["error"]
        assert "\n" not in message and message.startswith(str(folder)), message
        for phrase in row.refusal:
            assert phrase in message
        return
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target_class"] == row.cls
    said = " ".join(report.get("notes", []) + report.get("warnings", []))
    for phrase in row.notes:
        assert phrase in said
    if "extra_weights" in row.extra:
        assert len(report["extra_weights"]) == row.extra["extra_weights"]


def test_every_real_index_folder_has_a_row():
    if not BASE.is_dir():
        pytest.skip(f"{BASE} is not available")
    assert {p.name for p in BASE.iterdir() if p.is_dir()} == {row.folder for row in ROWS}
