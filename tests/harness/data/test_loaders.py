"""Loaders on real wav files on disk: strict errors, the official glob layout, mono and resampling."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from harness.data.apsipa import load_apsipa
from harness.data.audio import load_clip
from harness.data.dcase import load_dcase
from tests.support.audio import write_wav

HEADER = "filename,location,record_time,scene_label\n"


def write_csv(path, rows, bom=True):
    path.write_text(("\ufeff" if bom else "") + HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def apsipa_dir(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    write_wav(audio / "aaa_1.wav")
    write_wav(audio / "20230618_bbb_2_44k.wav")  # official layout: found by *<filename>*.wav
    write_wav(audio / "ccc_1.wav")
    csv = write_csv(tmp_path / "dev.csv", [
        "aaa_1,Xi'an,2023-06-18 18:44:34,Bus",
        "bbb_2,Xi'an,2023-06-18 18:44:34,",
        "ccc_1,Luoyang,2023-08-27 22:24:23,Bar",
    ])
    return csv, audio


def test_apsipa_loads_exact_and_glob_layout(apsipa_dir):
    csv, audio = apsipa_dir
    corpus = load_apsipa(csv, audio)
    clips = corpus.clips
    assert list(clips["clip_id"]) == ["aaa_1", "bbb_2", "ccc_1"]
    assert clips["path"].iloc[1].endswith("20230618_bbb_2_44k.wav")
    assert list(clips["label"]) == [0, -1, 9]
    assert clips["session"].iloc[0] == clips["session"].iloc[1] != clips["session"].iloc[2]
    assert list(clips["row"]) == [2, 3, 4]
    t = corpus.time_matrix()
    assert not np.allclose(t[0], t[2])


@pytest.mark.parametrize(
    "row, message",
    [
        ("zzz_9,Xi'an,2023-06-18 18:44:34,Bus", r"dev.csv: row 5: no audio files match zzz_9"),
        ("aaa,Xi'an,2023-06-18 18:44:34,Bus", r"row 5: 2 audio files match aaa"),
        ("ddd_1,Xi'an,18/06/2023 18:44,Bus", r"row 5: record_time .* YYYY-MM-DD HH:MM:SS"),
        ("ddd_1,Xi'an,2023-06-18 18:44:34,Beach", r"row 5: scene_label 'Beach' is not one of"),
        ("ddd_1,,2023-06-18 18:44:34,Bus", r"row 5: empty location"),
        ("aaa_1,Xi'an,2023-06-18 18:44:34,Bus", r"row 5: duplicate filename 'aaa_1'"),
    ],
)
def test_apsipa_bad_rows_name_the_row(apsipa_dir, row, message):
    csv, audio = apsipa_dir
    write_wav(audio / "aaa_2.wav")
    lines = csv.read_text(encoding="utf-8-sig").splitlines()[1:]
    write_csv(csv, lines + [row])
    with pytest.raises(ValueError, match=message):
        load_apsipa(csv, audio)


def test_apsipa_bad_header(tmp_path):
    (tmp_path / "m.csv").write_text("file,city,time,label\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"m.csv: header is file,city,time,label; expected filename,location"):
        load_apsipa(tmp_path / "m.csv", tmp_path)


def test_eval_csv_all_unlabelled(apsipa_dir):
    csv, audio = apsipa_dir
    write_csv(csv, ["aaa_1,Shenzhen,2023-06-18 18:44:34,", "ccc_1,Xi'an,2023-06-18 18:44:34,"])
    corpus = load_apsipa(csv, audio)
    assert (corpus.clips["label"] == -1).all()


def test_load_clip_mono_resample_pad_crop(tmp_path):
    write_wav(tmp_path / "st.wav", seconds=1.5, sr=22050, channels=2)
    x = load_clip(tmp_path / "st.wav", 16000, 1.0)
    assert x.shape == (16000,) and x.dtype == np.float32
    y = load_clip(tmp_path / "st.wav", 16000, 2.0)
    assert y.shape == (32000,) and np.all(y[24500:] == 0) and np.abs(y[:20000]).max() > 0.05
    np.testing.assert_array_equal(x, load_clip(tmp_path / "st.wav", 16000, 1.0))  # deterministic crop
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="bad.wav: cannot read audio"):
        load_clip(tmp_path / "bad.wav", 16000, 1.0)


def test_dcase_meta(tmp_path):
    (tmp_path / "audio").mkdir()
    names = ["audio/airport-lisbon-1000-40000-a.wav", "audio/street_traffic-vienna-161-4880-s2.wav"]
    for n in names:
        write_wav(tmp_path / n)
    meta = tmp_path / "meta.csv"
    meta.write_text("filename\tscene_label\tidentifier\tsource_label\n"
                    f"{names[0]}\tairport\tlisbon-1000\ta\n{names[1]}\tstreet_traffic\tvienna-161\ts2\n")
    corpus = load_dcase(meta, tmp_path)
    assert list(corpus.clips["location"]) == ["lisbon", "vienna"]
    assert list(corpus.clips["device"]) == ["a", "s2"]
    assert list(corpus.clips["session"]) == ["lisbon-1000", "vienna-161"]
    assert list(corpus.clips["label"]) == [0, 8]
    assert (corpus.time_matrix() == 0).all()
    meta.write_text(f"filename\tscene_label\n{names[0]}\tbeach\n")
    with pytest.raises(ValueError, match=r"meta.csv: row 2: scene_label 'beach'"):
        load_dcase(meta, tmp_path)
    meta.write_text("filename\tscene_label\naudio/oops.wav\tairport\n")
    with pytest.raises(ValueError, match=r"row 2: file name 'audio/oops.wav' is not"):
        load_dcase(meta, tmp_path)


# ---------------------------------------------------------------- bad input, end to end through the CLI
from harness.cli import main  # noqa: E402


def _dataset(tmp_path, rows=None, crlf=False, bom=True):
    audio = tmp_path / "audio"
    audio.mkdir(exist_ok=True)
    for name in ("a_1", "b_1", "c_1"):
        write_wav(audio / f"{name}.wav")
    rows = rows or ["a_1,Xi'an,2023-06-18 18:44:34,Bus", "b_1,Xi'an,2023-06-18 18:44:34,",
                    "c_1,Hefei,2023-06-19 08:00:00,Bar"]
    text = ("\ufeff" if bom else "") + HEADER + "".join(r + "\n" for r in rows)
    if crlf:
        text = text.replace("\n", "\r\n")
    (tmp_path / "dev.csv").write_bytes(text.encode("utf-8"))
    return ["--metadata", str(tmp_path / "dev.csv"), "--audio-dir", str(audio)]


@pytest.mark.parametrize("damage, message", [
    (lambda a: (a / "b_1.wav").write_bytes(b""), r"dev.csv: row 3: audio .*b_1.wav cannot be read"),
    (lambda a: (a / "b_1.wav").write_bytes(b"RIFF\x00\x00garbage"), r"row 3: audio .*b_1.wav cannot be read"),
    (lambda a: sf.write(a / "b_1.wav", np.zeros(0), 16000), r"row 3: audio .*b_1.wav has no samples"),
    (lambda a: (a / "b_1.wav").unlink(), r"row 3: no audio files match b_1"),
])
def test_bad_audio_is_one_line_error_naming_the_row(tmp_path, capsys, damage, message):
    args = _dataset(tmp_path)
    damage(tmp_path / "audio")
    assert main(["data", "check", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    import re
    assert re.search(message, err), err


def test_skip_bad_audio_lists_it(tmp_path, capsys):
    args = _dataset(tmp_path)
    (tmp_path / "audio" / "c_1.wav").write_bytes(b"")
    assert main(["data", "check", *args, "--on-bad-audio", "skip", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 usable clips" in out and "skipped 1 clips" in out and "row 4" in out


@pytest.mark.parametrize("content, message", [
    ("", r"dev.csv: empty file; expected the header filename,location,record_time,scene_label"),
    (HEADER, r"dev.csv: no rows after the header"),
    ("filename,location,scene_label\na_1,Xi'an,Bus\n", r"dev.csv: header is filename,location,scene_label; expected"),
])
def test_empty_or_short_csv(tmp_path, capsys, content, message):
    args = _dataset(tmp_path)
    (tmp_path / "dev.csv").write_text(content, encoding="utf-8")
    assert main(["data", "check", *args, "--quiet"]) == 2
    import re
    assert re.search(message, capsys.readouterr().err)


def test_crlf_and_no_bom_are_accepted(tmp_path, capsys):
    args = _dataset(tmp_path, crlf=True, bom=False)
    assert main(["data", "check", *args, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 usable clips (2 labelled, 1 unlabelled) in 2 sessions, 2 cities" in out
    assert "sample rates (Hz): 16000 x3" in out
