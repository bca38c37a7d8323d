"""speech_ctc: spoken digit strings as WAV files, transcribed as Keras does."""

import zoo
from export.cli import main
from zoo import datasets

from . import example


@example("speech_ctc")
def speech_ctc(name, out, tmp_path, capsys):
    from export.verification.runtime import load_bundle
    from zoo import audio
    from zoo.datasets import digit_strings as ds
    from zoo.datasets import spoken_digits as sd
    from zoo.tasks import edit_distance, get_task

    # held-out speakers' strings as WAV files: the file's transcript on both runtimes is
    # Keras' (greedy), and for each speaker one string Keras reads right is read right
    task, meta = get_task("ctc"), zoo.get_spec(name).meta
    # 30 a speaker: the shipped weights read 17 of Allison's 100 Spanish strings right
    waves, texts, who = ds.held_out_strings(per_speaker=30)
    paths = [tmp_path / f"{s}_{i}.wav" for i, s in enumerate(who)]
    for path, wave in zip(paths, waves, strict=True):
        audio.write_wav(path, wave)
    keras = load_bundle(out).predict([task.read_speech(str(p), meta) for p in paths],
                                     backend="keras")
    for speaker in sd.TEST_SPEAKERS:
        rows = [i for i, s in enumerate(who) if s == speaker]
        right = [i for i in rows if keras[i] == texts[i]]
        assert right, (speaker, [keras[i] for i in rows], [texts[i] for i in rows])
        for i in {right[0], rows[0]}:
            for backend in ("litert", "onnx"):
                assert main(["predict", str(out), "--input", str(paths[i]),
                             "--backend", backend]) == 0
                assert capsys.readouterr().out.strip() == keras[i]
    # strings built the same way from the training speakers' recordings (the clips it
    # trained on) are read (CER <= 1 %): the held-out CER (42 %) is unheard recordings,
    # not the strings, pauses or decoder
    seen = datasets.load("digit_strings", "train_speakers")
    read = load_bundle(out).predict(seen.x, backend="keras")
    errors = sum(edit_distance(r, t) for r, t in zip(read, seen.texts, strict=True))
    assert errors / sum(map(len, seen.texts)) <= 0.01
