"""English ALBERT's SentencePiece vocabulary: spiece.model + tokenizer.json, same ids as sentencepiece."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ROOT, fixture
from tf2hf import convert
from tf2hf.errors import VocabError
from tf2hf.output.spiece import read_model

spm = pytest.importorskip("sentencepiece")
transformers = pytest.importorskip("transformers")

TEXT = (
    "the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "
    "all that glitters is not gold. the early bird catches the worm. "
    "every cloud has a silver lining. practice makes perfect. knowledge is power. "
    "when in rome do as the romans do. fortune favours the bold. time and tide wait for no man. "
) * 40
SENTENCES = ["the lazy fox saves gold", "a bird in time", "glitters jumps over nine dogs", "quick worm"]


@pytest.fixture(scope="module")
def albert_spm(tmp_path_factory):
    """A 50-piece unigram model laid out like ALBERT's 30k-clean.model."""
    folder = tmp_path_factory.mktemp("spm")
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT.replace(". ", ".\n"))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "30k-clean"), vocab_size=50, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=1.0, minloglevel=2,
    )
    return folder / "30k-clean.model"


def test_reader_matches_sentencepiece(albert_spm):
    model = read_model(albert_spm)
    processor = spm.SentencePieceProcessor(model_file=str(albert_spm))
    assert len(model.pieces) == processor.get_piece_size() == 50
    for index, (piece, score, _kind) in enumerate(model.pieces):
        assert piece == processor.id_to_piece(index)
        assert score == pytest.approx(processor.get_score(index))
    assert model.unk_id == processor.unk_id() == 1


def test_converted_albert_tokenizes_like_sentencepiece(albert_spm, tmp_path):
    result = convert("albert", tf=fixture("albert_pretrain_g2i2"), vocab=albert_spm, out=tmp_path / "out", verify=False)
    assert any("SentencePiece, 50 pieces" in n for n in result.notes)
    out = tmp_path / "out"
    assert (out / "spiece.model").read_bytes() == albert_spm.read_bytes()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    processor = spm.SentencePieceProcessor(model_file=str(albert_spm))
    cls, sep = processor.piece_to_id("[CLS]"), processor.piece_to_id("[SEP]")
    for sentence in SENTENCES:
        assert tokenizer(sentence)["input_ids"] == [cls, *processor.encode(sentence.lower()), sep], sentence
    assert tokenizer("The LAZY Fox")["input_ids"] == tokenizer("the lazy fox")["input_ids"]


def test_loading_does_not_need_sentencepiece(albert_spm, tmp_path):
    convert("albert", tf=fixture("albert_pretrain_g2i2"), vocab=albert_spm, out=tmp_path / "out", verify=False)
    code = (
        "import sys; sys.modules['sentencepiece'] = None\n"
        "from transformers import AutoTokenizer\n"
        f"t = AutoTokenizer.from_pretrained({str(tmp_path / 'out')!r})\n"
        "print(len(t), t('the lazy fox')['input_ids'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("50 ")


def test_a_file_that_is_not_a_sentencepiece_model(tmp_path):
    bad = tmp_path / "30k-clean.model"
    bad.write_bytes(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
    with pytest.raises(VocabError, match=r"not a SentencePiece model; pass the model's 30k-clean.model or vocab.txt"):
        read_model(bad)


def test_tokenizer_config_names_the_albert_tokenizer(albert_spm, tmp_path):
    convert("albert", tf=fixture("albert_pretrain_g2i2"), vocab=albert_spm, out=tmp_path / "out", verify=False)
    config = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "AlbertTokenizer" and config["do_lower_case"] is True
