"""Tiny fixture datasets in each real layout, written as encoded files and read back."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vidattn.data import real
from vidattn.data.suites.order import generate_split, suite_config

CLASSES = ["Alpha", "Beta"]


def _clip(seed: int, frames: int = 12) -> np.ndarray:
    """A smooth moving gradient (lossy codecs keep it close)."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(24), np.arange(32), indexing="ij")
    base = 120 + 100 * np.sin(0.2 * x + 0.15 * y + 0.5 * t + seed)
    return np.repeat(base[..., None], 3, -1).clip(0, 255).astype(np.uint8)


def _frames_dir(path, video):
    path.mkdir(parents=True)
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(path / f"{t + 1:05d}.jpg", quality=95)


@pytest.fixture
def ucf(tmp_path):
    root = tmp_path / "ucf"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 Alpha\n2 Beta\n")
    (lists / "trainlist01.txt").write_text("Alpha/v_Alpha_g01_c01.avi 1\nBeta/v_Beta_g01_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("Beta/v_Beta_g02_c01.avi\n")
    for i, rel in enumerate(["Alpha/v_Alpha_g01_c01.avi", "Beta/v_Beta_g01_c01.avi", "Beta/v_Beta_g02_c01.avi"]):
        real.encode_video(root / "UCF-101" / rel, _clip(i))
    return root


def test_ucf101(ucf):
    items, classes = real.ucf101(ucf, 1, train=True)
    assert classes == CLASSES and [i.label for i in items] == [0, 1]
    test_items, _ = real.ucf101(ucf, 1, train=False)
    assert [i.label for i in test_items] == [1]
    assert real.detect_layout(ucf) == "ucf101"


def test_hmdb51(tmp_path):
    root = tmp_path / "hmdb"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for c, cls in enumerate(["brush_hair", "cartwheel"]):
        (splits / f"{cls}_test_split1.txt").write_text(f"{cls}_a.avi 1\n{cls}_b.avi 2\n{cls}_c.avi 0\n")
        for s in "abc":
            real.encode_video(root / cls / f"{cls}_{s}.avi", _clip(c))
    items, classes = real.hmdb51(root, 1, train=True)
    assert classes == ["brush_hair", "cartwheel"] and len(items) == 2
    assert [i.path.name for i in real.hmdb51(root, 1, train=False)[0]] == ["brush_hair_b.avi", "cartwheel_b.avi"]
    assert len(real.listed_videos(root)[1]) == 4  # train and test of split 1; unused videos not listed


def test_kinetics400_csv(tmp_path):
    root = tmp_path / "k400"
    rows = "label,youtube_id,time_start,time_end,split\nabseiling,AAA,10,20,train\nzumba,BBB,0,10,train\n"
    (root).mkdir()
    (root / "train.csv").write_text(rows)
    real.encode_video(root / "train" / "abseiling" / "AAA_000010_000020.mp4", _clip(0))
    real.encode_video(root / "train" / "BBB_000000_000010.mp4", _clip(1))  # flat layout also found
    items, classes = real.kinetics400(root, "train")
    assert classes == ["abseiling", "zumba"] and [i.label for i in items] == [0, 1]
    clip = real.VideoDataset(items, classes, real.Sampling("dense", frames=4, stride=2, size=16), train=True)[0]
    assert clip["video"].shape == (3, 4, 16, 16)
    (root / "train.csv").write_text(rows + "zumba,CCC,0,10,train\n")
    layout, present, missing = real.listed_videos(root)
    assert layout == "kinetics400" and len(present) == 2
    assert [m.name for m in missing] == ["CCC_000000_000010.mp4"]


def test_ssv2_videos_and_frame_folders(tmp_path):
    root = tmp_path / "ssv2"
    root.mkdir()
    (root / "labels.json").write_text(json.dumps({"Pushing something": "0", "Pulling something": "1"}))
    (root / "train.json").write_text(json.dumps([{"id": "1", "template": "Pulling [something]"},
                                                  {"id": "2", "template": "Pushing [something]"}]))
    real.encode_video(root / "videos" / "1.webm", _clip(0))
    _frames_dir(root / "frames" / "2", _clip(1))
    items, classes = real.ssv2(root, "train")
    assert classes == ["Pushing something", "Pulling something"] and [i.label for i in items] == [1, 0]
    ds = real.VideoDataset(items, classes, real.Sampling("tsn", frames=8, size=16, clips=2, three_crop=True),
                           train=False)
    assert ds[0]["video"].shape == (6, 3, 8, 16, 16) and ds[1]["video"].shape == (6, 3, 8, 16, 16)
    assert real.listed_videos(root)[1:] == ([root / "videos" / "1.webm", root / "frames" / "2"], [])


def test_jester_frame_folders(tmp_path):
    root = tmp_path / "jester"
    root.mkdir()
    (root / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\n")
    (root / "jester-v1-train.csv").write_text("100;Swiping Right\n101;Swiping Left\n")
    for i, vid in enumerate(["100", "101"]):
        _frames_dir(root / "frames" / vid, _clip(i))
    items, classes = real.jester(root, "train")
    assert [i.label for i in items] == [1, 0]
    frames = real.decode_video(items[0].path)
    assert frames.shape == (12, 24, 32, 3)
    assert np.abs(frames.astype(float) - _clip(0)).mean() < 3  # JPEG is lossy, not garbage


def test_decoded_video_is_close_to_what_was_encoded(tmp_path):
    smooth = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, None, :, None], 24, 1)
    video = np.broadcast_to(smooth, (6, 24, 32, 3)).copy()
    real.encode_video(tmp_path / "a.mp4", video)
    back = real.decode_video(tmp_path / "a.mp4")
    assert back.shape == video.shape and np.abs(back.astype(float) - video).mean() < 3


def test_samplers():
    idx = real.tsn_indices(80, 8, train=False)
    assert idx.tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    rng = np.random.default_rng(0)
    tr = real.tsn_indices(80, 8, train=True, rng=rng)
    assert all(10 * k <= v < 10 * (k + 1) for k, v in enumerate(tr))
    assert real.dense_indices(100, 4, 3, 10).tolist() == [10, 13, 16, 19]
    assert real.clip_starts(100, 8, 2, 3, train=False) == [0, 42, 85]
    crops = real.three_crops(torch.zeros(3, 2, 10, 16), 10)
    assert [c.shape[-2:] for c in crops] == [(10, 10)] * 3


def test_exported_suite_reads_back_through_the_ucf101_loader(tmp_path):
    cfg = suite_config("order")
    arrays = generate_split(cfg, "train", 10)
    real.export_ucf101(arrays.videos, arrays.labels, [c.name for c in cfg.classes], tmp_path,
                       train=np.arange(10) < 6)
    items, classes = real.ucf101(tmp_path, 1, train=True)
    assert len(items) == 6 and len(classes) == cfg.num_classes
    ds = real.VideoDataset(items, classes, real.Sampling("tsn", frames=8, size=32), train=False)
    for i in range(3):
        got = ((ds[i]["video"] + 0.5) * 255).permute(1, 2, 3, 0).numpy()
        assert ds[i]["label"] == arrays.labels[i]
        assert np.abs(got - arrays.videos[i]).mean() < 12


def test_bad_inputs_name_the_file(tmp_path, ucf):
    with pytest.raises(real.DatasetError, match="dataset root not found"):
        real.detect_layout(tmp_path / "nowhere")
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(real.DatasetError, match="cannot decode video .*corrupt.avi"):
        real.decode_video(bad)
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("Gamma/v_Gamma_g01_c01.avi 3\n")
    with pytest.raises(real.DatasetError, match=r"unknown class 'Gamma' in .*trainlist01.txt line 1"):
        real.ucf101(ucf)
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("Alpha/v_Alpha_g09_c01.avi 1\n")
    with pytest.raises(real.DatasetError, match="video listed in .*trainlist01.txt line 1 not found"):
        real.ucf101(ucf)
    with pytest.raises(real.DatasetError, match="matches no known layout"):
        real.detect_layout(tmp_path)


def test_data_check_names_missing_corrupt_and_truncated_videos(ucf, capsys):
    from vidattn.cli import main
    from vidattn.data.check import check_dataset

    assert main(["data", "check", str(ucf), "--workers", "1"]) == 0  # a sound dataset passes
    vids = ucf / "UCF-101"
    real.encode_video(vids / "Beta/v_Beta_g01_c01.avi", _clip(5, frames=48))
    whole = (vids / "Beta/v_Beta_g01_c01.avi").read_bytes()
    (vids / "Beta/v_Beta_g01_c01.avi").write_bytes(whole[: len(whole) * 3 // 5])  # cut short
    (vids / "Alpha/v_Alpha_g01_c01.avi").write_bytes(b"this is not a video" * 10)
    (vids / "Beta/v_Beta_g02_c01.avi").unlink()
    layout, checks = check_dataset(ucf, workers=1, progress=False)
    status = {c.path.name: c.status for c in checks}
    assert layout == "ucf101" and status == {"v_Beta_g02_c01.avi": "missing", "v_Alpha_g01_c01.avi": "corrupt",
                                             "v_Beta_g01_c01.avi": "truncated"}
    truncated = next(c for c in checks if c.status == "truncated")
    assert 0 < truncated.frames < truncated.expected
    assert main(["data", "check", str(ucf), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "TRUNCATED" in out and "v_Beta_g01_c01.avi" in out and "1 missing, 1 corrupt, 1 truncated" in out


# ------------------------------------------------------------------ the layouts added for the coming chapters


def test_ssv1_frame_folders(tmp_path):
    root = tmp_path / "ssv1"
    root.mkdir()
    (root / "something-something-v1-labels.csv").write_text("Pushing something\nPulling something\n")
    (root / "something-something-v1-train.csv").write_text("7;Pulling something\n8;Pushing something\n")
    (root / "something-something-v1-validation.csv").write_text("9;Pushing something\n")
    for i, vid in enumerate(["7", "8", "9"]):
        _frames_dir(root / "20bn-something-something-v1" / vid, _clip(i))
    assert real.detect_layout(root) == "ssv1"
    items, classes = real.ssv1(root, "train")
    assert classes == ["Pushing something", "Pulling something"] and [i.label for i in items] == [1, 0]
    s = real.Sampling("tsn", frames=4, size=16)
    data = real.open_dataset(root, train_sampling=s, test_sampling=s)
    assert (len(data.train), len(data.test), data.splits) == (2, 1, ("train", "validation"))
    assert data.probe[0]["video"].shape == (3, 4, 16, 16) and int(data.probe[0]["label"]) == 0


def test_kinetics600_is_the_kinetics400_layout_named_by_dataset(tmp_path):
    root = tmp_path / "k600"
    root.mkdir()
    (root / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                    "zumba,AAA,0,10,train\nabseiling,BBB,0,10,train\n")
    (root / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nzumba,CCC,0,10,val\n")
    for split, vid in (("train", "AAA"), ("train", "BBB"), ("val", "CCC")):
        real.encode_video(root / split / f"{vid}_000000_000010.mp4", _clip(0))
    s = real.Sampling("dense", frames=4, stride=2, size=16)
    data = real.open_dataset(root, "kinetics600", train_sampling=s, test_sampling=s)
    assert data.dataset == "kinetics600" and data.classes == ["abseiling", "zumba"]
    assert [i.label for i in data.test.items] == [1]
    assert real.listed_videos(root, "kinetics600")[0] == "kinetics600"
    with pytest.raises(real.DatasetError, match="unknown dataset 'kinetics700'"):
        real.open_dataset(root, "kinetics700", train_sampling=s, test_sampling=s)


def _charades(root):
    root.mkdir()
    (root / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nc001 Opening a door\n"
                                                  "c002 Sitting in a chair\n")
    head = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
    (root / "Charades_v1_train.csv").write_text(
        head + 'AAAAA,s,Kitchen,6,7,Yes,x,door,d,"c001 0.00 3.10;c002 1.00 5.00",10\n'
        + "BBBBB,s,Hall,6,7,Yes,x,door,d,c000 0.5 2.0,10\n")
    (root / "Charades_v1_test.csv").write_text(head + "CCCCC,s,Hall,6,7,Yes,x,door,d,,10\n"
                                               + "DDDDD,s,Hall,6,7,Yes,x,door,d,c001 0 1;c001 2 3,10\n")
    for i, vid in enumerate(["AAAAA", "BBBBB", "CCCCC", "DDDDD"]):
        real.encode_video(root / "Charades_v1_480" / f"{vid}.mp4", _clip(i))
    return root


def test_charades_is_multi_label_with_map_and_wap(tmp_path):
    from vidattn.engine.real_data import average_precision, label_loss

    root = _charades(tmp_path / "charades")
    assert real.detect_layout(root) == "charades"
    items, classes = real.charades(root, "train")
    assert classes == ["Holding some clothes", "Opening a door", "Sitting in a chair"]
    assert [i.label for i in items] == [(1, 2), (0,)]
    s = real.Sampling("tsn", frames=4, size=16)
    data = real.open_dataset(root, train_sampling=s, test_sampling=s)
    assert data.multi_label and data.test.items[0].label == () and data.test.items[1].label == (1,)
    assert data.train[0]["label"].tolist() == [0.0, 1.0, 1.0]
    assert label_loss(torch.zeros(2, 3), torch.stack([data.train[i]["label"] for i in (0, 1)])) > 0
    # two classes with positives: AP 1 (ranked first) and 1/2 (the positive ranked second of two)
    scores = torch.tensor([[0.9, 0.1], [0.1, 0.8], [0.2, 0.9]])
    targets = torch.tensor([[1, 0], [0, 1], [0, 0]])
    ap = average_precision(scores, targets)
    assert ap["mAP"] == pytest.approx(75.0) and ap["wAP"] == pytest.approx(75.0)
    heavy = torch.tensor([[1, 0], [1, 1], [1, 0]])  # class 0 has 3 positives: it weighs 3/4 in wAP
    ap = average_precision(scores, heavy)
    assert ap["wAP"] == pytest.approx(100 * (3 / 4 * 1.0 + 1 / 4 * 0.5))


def test_generic_list_files(tmp_path):
    root = tmp_path / "lists"
    (root / "vids").mkdir(parents=True)
    for i in range(3):
        real.encode_video(root / "vids" / f"{i}.mp4", _clip(i))
    (root / "train.txt").write_text("vids/0.mp4 0\nvids/1.mp4 2\n")
    (root / "val.txt").write_text("vids/2.mp4 1\n")
    assert real.detect_layout(root) == "video_list"
    items, classes = real.video_list(root, "train")
    assert classes == ["class_0", "class_1", "class_2"] and [i.label for i in items] == [0, 2]
    (root / "classes.txt").write_text("run\njump\nswim\n")
    assert real.video_list(root, "val")[1] == ["run", "jump", "swim"]
    (root / "val.txt").write_text("vids/2.mp4 1 2\n")  # several labels: multi-label
    assert real.video_list(root, "val")[0][0].label == (1, 2)
    (root / "val.txt").write_text("vids/2.mp4 one\n")
    with pytest.raises(real.DatasetError, match=r"malformed line 1 in .*val.txt.*path label"):
        real.video_list(root, "val")
    frames = tmp_path / "frames"
    _frames_dir(frames / "rawframes" / "a", _clip(0))
    (frames / "train.txt").write_text("rawframes/a 12 0\n")
    assert real.detect_layout(frames) == "frame_list"
    items, _ = real.frame_list(frames, "train")
    assert items[0].path.is_dir() and real.decode_video(items[0].path).shape == (12, 24, 32, 3)


def test_a_truncated_video_is_an_error_that_names_it(tmp_path):
    path = tmp_path / "cut.avi"
    real.encode_video(path, _clip(0, frames=48))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 3 // 5])
    frames, declared = real.decode_counted(path)
    assert 0 < len(frames) < declared == 48
    with pytest.raises(real.DatasetError, match=r"cut.avi is truncated: decoded \d+ of 48 frames"):
        real.decode_video(path)


def test_bad_video_policy(tmp_path, ucf):
    vids = ucf / "UCF-101"
    (vids / "Alpha/v_Alpha_g01_c01.avi").write_bytes(b"not a video" * 10)  # first training video
    s = real.Sampling("tsn", frames=4, size=16)
    strict = real.open_dataset(ucf, train_sampling=s, test_sampling=s)
    with pytest.raises(real.DatasetError, match="v_Alpha_g01_c01.avi.*on_bad_video='error'"):
        strict.train[0]
    lenient = real.open_dataset(ucf, train_sampling=s, test_sampling=s, on_bad_video="skip")
    item = lenient.train[0]  # the next sound video takes its place
    assert int(item["label"]) == 1 and int(item["index"]) == 1 and list(lenient.train.bad) == [0]
    (vids / "Beta/v_Beta_g02_c01.avi").write_bytes(b"")  # the only test video
    blank = lenient.test[0]
    assert list(lenient.test.bad) == [0] and blank["video"].abs().sum() == 0
    with pytest.raises(ValueError, match="unknown on_bad_video 'ignore'"):
        real.open_dataset(ucf, train_sampling=s, test_sampling=s, on_bad_video="ignore")


def test_annotation_fingerprint_follows_the_split_files(ucf):
    before = real.annotation_fingerprint(ucf)
    assert real.annotation_fingerprint(ucf) == before
    (ucf / "ucfTrainTestlist" / "testlist01.txt").write_text("Alpha/v_Alpha_g01_c01.avi\n")
    assert real.annotation_fingerprint(ucf) != before


def test_open_dataset_folds_and_errors(ucf):
    s = real.Sampling("tsn", frames=4, size=16)
    data = real.open_dataset(ucf, "", "1", train_sampling=s, test_sampling=s)
    assert data.splits == ("fold 1 train", "fold 1 test") and "ucf101" in data.describe()
    with pytest.raises(real.DatasetError, match="folds 1, 2 and 3"):
        real.open_dataset(ucf, "ucf101", 4, train_sampling=s, test_sampling=s)
