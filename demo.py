"""The whole Meta-OoD pipeline on the synthetic demo world, on a laptop CPU (`make demo`).

Every step is the command a user types on the real data, with the demo's data and output roots and
the small model; steps that are already done are skipped, so an interrupted demo continues. At the
end it checks that the method works on the demo world: OoD training raises the pixel AP on the
LostAndFound-like test set, and the meta classifier removes false-positive segments while keeping
most true ones.
"""
import json
import os
import subprocess
import sys
import time

DATA = os.path.join("demo", "datasets")
IO = os.path.join("demo", "io")
MODEL = "DeepLabV3+_TinyResNet"
BASELINE_EPOCHS = 30
OOD_EPOCHS = 6
# one process: on 2 cores, data-loader workers would fight the training threads for the CPU
COMMON = ["--data_root", DATA, "--io_root", IO, "-model", MODEL, "--num_workers", "0"]
BASELINE = os.path.join(IO, "weights", "cityscapes", f"{MODEL}_epoch_{BASELINE_EPOCHS}.pth")
EVAL = [*COMMON, "--init_ckpt", BASELINE, "-val", "LostAndFound"]
SMIYC = [*COMMON, "--init_ckpt", BASELINE, "-val", "RoadObstacle21"]
OODMC = ["--SVM_eval_subsize", "10", "--svm_points_num", "10000"]

STEPS = [
    ("demo world", ["preparation/make_demo_world.py", "--data_root", DATA, "--size", "demo"]),
    ("Cityscapes train ids", ["preparation/prepare_cityscapes.py", "--data_root", DATA]),
    ("LostAndFound train ids", ["preparation/prepare_lost_and_found.py", "--data_root", DATA]),
    ("COCO OoD masks", ["preparation/prepare_coco_segmentation.py", "--data_root", DATA]),
    ("cropped COCO objects", ["preparation/make_cropped_coco.py", "--data_root", DATA, "--min_area", "200"]),
    ("COCO objects pasted into Cityscapes", ["src/dataset/cs_coco_embedding.py", "--data_root", DATA,
                                            "--cs_per_coco", "2", "--crop_size", "64"]),
    ("baseline: the small model trained on Cityscapes alone",
     ["ood_training.py", *COMMON, "-train", "Cityscapes", "--init_ckpt", "none", "-nepochs", str(BASELINE_EPOCHS),
      "-crop", "128", "--batch_size", "8", "-lr", "2e-3"]),
    ("OoD training: entropy maximisation on COCO objects",
     ["ood_training.py", *COMMON, "--init_ckpt", BASELINE, "-nepochs", str(OOD_EPOCHS), "-crop", "128",
      "--batch_size", "8", "-lr", "1e-3", "--ood_subsampling_factor", "0.35"]),
    ("baseline: inference cache and segment search", ["meta_classification.py", *EVAL, "-epoch", "0", "-prepare",
                                                      "-segment"]),
    ("OoD-trained model: cache, segment search, meta classifier",
     ["meta_classification.py", *EVAL, "-epoch", str(OOD_EPOCHS)]),
    ("SML statistics on Cityscapes train", ["evaluation.py", *EVAL, "-epoch", str(OOD_EPOCHS), "--sml_stats"]),
    ("evaluation", ["evaluation.py", *EVAL, "-epoch", str(OOD_EPOCHS), "--protocol", "all"]),
    ("OODMC: MC-dropout moment features and a linear SVM",
     ["meta_classification.py", *EVAL, "-epoch", str(OOD_EPOCHS), "-moment", "-SVM", *OODMC]),
    ("OODMC evaluation", ["evaluation.py", *EVAL, "-epoch", str(OOD_EPOCHS), "-moment", *OODMC]),
    ("RoadObstacle21-like track: baseline", ["meta_classification.py", *SMIYC, "-epoch", "0", "-prepare", "-segment"]),
    ("RoadObstacle21-like track: OoD-trained model", ["meta_classification.py", *SMIYC, "-epoch", str(OOD_EPOCHS)]),
    ("RoadObstacle21-like track: evaluation and submission files",
     ["evaluation.py", *SMIYC, "-epoch", str(OOD_EPOCHS), "-pixel", "-segment", "--export_smiyc", os.path.join(IO, "smiyc", "RoadObstacle21")]),
]
# Any method's score maps (--scores_from): two "external" maps made from the OoD-trained small model, in the
# SegmentMeIfYouCan submission layout, searched for segments, meta-classified and evaluated before / after.
EXTERNAL_DIR = os.path.join(IO, "external_maps")
EXTERNAL = {"max_softmax": ["-threshold", "0.5"], "noisy_entropy": ["--score_quantile", "0.98"]}
for kind, segments_at in EXTERNAL.items():
    maps = os.path.join(EXTERNAL_DIR, kind)
    STEPS += [
        (f"external score maps: {kind}",
         ["preparation/make_external_score_maps.py", "--cache",
          os.path.join(IO, "LostAndFound", f"{MODEL}_entropy_epoch_{OOD_EPOCHS}_alpha_0.9", "cache"), "--kind", kind,
          "--out", maps]),
        (f"external score maps {kind}: segments and meta classifier",
         ["meta_classification.py", *EVAL, "-epoch", str(OOD_EPOCHS), "--scores_from", maps, *segments_at, "-segment",
          "-removal"]),
        (f"external score maps {kind}: evaluation and the filtered maps as submission files",
         ["evaluation.py", *EVAL, "-epoch", str(OOD_EPOCHS), "--scores_from", maps, *segments_at, "-pixel",
          "-segment", "--export_smiyc", os.path.join(EXTERNAL_DIR, f"{kind}_filtered")]),
    ]

DONE_WHEN = {  # steps whose output tells that they already ran
    "baseline: the small model trained on Cityscapes alone": BASELINE,
    "OoD training: entropy maximisation on COCO objects":
        os.path.join(IO, "weights", "entropy", f"{MODEL}_epoch_{OOD_EPOCHS}_alpha_0.9.pth"),
}
RUN = f"{MODEL}_entropy_epoch_{OOD_EPOCHS}_alpha_0.9"
RESULTS = os.path.join(IO, "results", "LostAndFound", RUN, "t0.7", "results.json")
META_CLASSIFIER = os.path.join(IO, "LostAndFound", RUN, "segments_t0.7", "meta_classifier.json")


def run(title, argv):
    if title in DONE_WHEN and os.path.isfile(DONE_WHEN[title]):
        print(f"== {title}: done already ({DONE_WHEN[title]})")
        return
    print(f"\n== {title}\n$ python {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, *argv], check=True)


def check_claims():
    """The two claims of the demo, from the results files; returns the lines to print and whether both hold."""
    with open(RESULTS) as f:
        rows = json.load(f)["rows"]
    with open(META_CLASSIFIER) as f:
        meta_summary = json.load(f)
    baseline, trained = rows["baseline"], rows[f"entropy training (epoch {OOD_EPOCHS})"]
    meta = rows["+ meta classifier"]
    ap_before, ap_after = baseline["pixel"]["entropy"]["ap"], trained["pixel"]["entropy"]["ap"]
    fp_before, fp_after = trained["segments"]["fp"], meta["segments"]["fp"]
    true_segments = meta_summary["num_segments"] - meta_summary["num_false_positives"]
    kept_true = true_segments - (meta_summary["removed"] - meta_summary["removed_false_positives"])
    claims = [
        (ap_after > ap_before, f"OoD training raises the pixel AP: {100 * ap_before:.1f} -> {100 * ap_after:.1f}"),
        (fp_after < fp_before and kept_true >= 0.5 * true_segments,
         f"the meta classifier removes false-positive segments ({fp_before} -> {fp_after}) and keeps "
         f"{kept_true} of {true_segments} true OoD segments"),
    ]
    return [("holds:        " if ok else "DOES NOT HOLD: ") + text for ok, text in claims], all(ok for ok, _ in claims)


def external_table():
    """Before / after the meta classifier on each external map: the component metrics and segment counts."""
    lines = ["| map | | FP segments | FN segments | sIoU | PPV | mean F1 | meta classifier AUROC |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in EXTERNAL:
        with open(os.path.join(IO, "results", "LostAndFound", f"external_{kind}", "results.json")) as f:
            report = json.load(f)
        families = " + ".join(report.get("families", []))
        flag, value = EXTERNAL[kind]
        segments_dir = os.path.join(IO, "LostAndFound", "external", kind,
                                    f"segments_{'q' if flag == '--score_quantile' else 't'}{float(value)}")
        with open(os.path.join(segments_dir, "meta_classifier.json")) as f:
            auroc = json.load(f)["auroc"]
        for name, row in report["rows"].items():
            c, s = row["component"], row["segments"]
            lines.append(f"| {kind} | {name} | {s['fp']} | {s['fn']} | {100 * c['siou_gt']:.2f} | {100 * c['ppv']:.2f} | "
                         f"{100 * c['mean_f1']:.2f} | {f'{auroc:.3f} ({families})' if name != 'external' else ''} |")
    return "\n".join(lines)


def main():
    started = time.time()
    for title, argv in STEPS:
        run(title, argv)
    lines, ok = check_claims()
    print(f"\n== demo finished in {(time.time() - started) / 60:.1f} min; everything is under {IO}/")
    print("\n".join(lines))
    print("\nAny method's score maps (--scores_from), before and after the meta classifier:\n" + external_table())
    if not ok:
        print("The demo world did not show the method working this time; see the results above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
