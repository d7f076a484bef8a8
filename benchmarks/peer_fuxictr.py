"""The peer beside the project: FuxiCTR's DeepFM (PyTorch, CPU) on a split written by ``benchmarks/peers.py``.

    .venv-peers/bin/python benchmarks/peer_fuxictr.py --data DIR --out result.json

Runs in the peers' own virtualenv (``make bench-peers`` makes it: FuxiCTR and a CPU PyTorch, never the
project's environment). ``DIR`` holds ``train.csv``, ``valid.csv`` and ``test.csv`` (the Frappe fields as
integer ids and ``label``). The settings are those of the BARS ``DeepFM_frappe_x1`` run (FuxiCTR's own
config): 10-dim embeddings, MLP 400-400-400 with batch normalisation and dropout 0.2, embedding regulariser
0.05, Adam 1e-3, batch 4096, up to 100 epochs, validation AUC monitored (patience 2, learning rate / 10 on
each plateau, best weights restored), seed 2021.

The FuxiCTR wheel ships the library (feature processing, data loaders, ``BaseModel`` with its training loop,
the layers) but not its ``model_zoo``; ``DeepFM`` below composes the wheel's layers exactly as
``model_zoo/DeepFM/src/DeepFM.py`` does (embeddings shared by the FM and the MLP, FM = LR + pairwise
interactions, MLP logit added).

Writes ``--out`` (JSON): test AUC and logloss, epochs, training seconds and examples per second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

FIELDS = ("user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")
PARAMS = {
    "model": "DeepFM",
    "dataset_id": "frappe_split",
    "embedding_dim": 10,
    "hidden_units": [400, 400, 400],
    "hidden_activations": "relu",
    "net_dropout": 0.2,
    "batch_norm": True,
    "embedding_regularizer": 0.05,
    "net_regularizer": 0,
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "loss": "binary_crossentropy",
    "batch_size": 4096,
    "epochs": 100,
    "shuffle": True,
    "seed": 2021,
    "monitor": "AUC",
    "monitor_mode": "max",
    "early_stop_patience": 2,
    "metrics": ["AUC", "logloss"],
    "task": "binary_classification",
    "gpu": -1,
    "verbose": 0,
    "data_format": "csv",
    "min_categr_count": 1,
    "num_workers": 1,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peer_fuxictr.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="the folder with train.csv, valid.csv and test.csv")
    parser.add_argument("--out", type=Path, required=True, help="the result (JSON)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = [s for s in ("train", "valid", "test") if not (args.data / f"{s}.csv").is_file()]
    if missing:
        print(f"peer_fuxictr.py: error: {args.data} lacks {', '.join(f'{m}.csv' for m in missing)}", file=sys.stderr)
        return 2
    # The peer's libraries exist only in the peers' virtualenv: imported here, so --help works anywhere.
    import torch
    from fuxictr.features import FeatureMap
    from fuxictr.preprocess import FeatureProcessor, build_dataset
    from fuxictr.pytorch.dataloaders import RankDataLoader
    from fuxictr.pytorch.layers import FactorizationMachine, FeatureEmbedding, MLP_Block
    from fuxictr.pytorch.models import BaseModel
    from fuxictr.pytorch.torch_utils import seed_everything

    class DeepFM(BaseModel):
        def __init__(self, feature_map, model_id="DeepFM", **kwargs):
            super().__init__(feature_map, model_id=model_id, **kwargs)
            self.embedding_layer = FeatureEmbedding(feature_map, kwargs["embedding_dim"])
            self.fm = FactorizationMachine(feature_map)
            self.mlp = MLP_Block(
                input_dim=feature_map.sum_emb_out_dim(),
                output_dim=1,
                hidden_units=kwargs["hidden_units"],
                hidden_activations=kwargs["hidden_activations"],
                output_activation=None,
                dropout_rates=kwargs["net_dropout"],
                batch_norm=kwargs["batch_norm"],
            )
            self.compile(kwargs["optimizer"], kwargs["loss"], kwargs["learning_rate"])
            self.reset_parameters()
            self.model_to_device()

        def forward(self, inputs):
            x = self.get_inputs(inputs)
            feature_emb = self.embedding_layer(x)
            y_pred = self.fm(x, feature_emb) + self.mlp(feature_emb.flatten(start_dim=1))
            return {"y_pred": self.output_activation(y_pred)}

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    work = args.data / "fuxictr"
    params = PARAMS | {
        "epochs": args.epochs,
        "data_root": str(work),
        "model_root": str(work / "checkpoints"),
        "train_data": str(args.data / "train.csv"),
        "valid_data": str(args.data / "valid.csv"),
        "test_data": str(args.data / "test.csv"),
        "feature_cols": [{"name": list(FIELDS), "active": True, "dtype": "str", "type": "categorical"}],
        "label_col": {"name": "label", "dtype": "float"},
    }
    seed_everything(seed=params["seed"])
    processor = FeatureProcessor(**params)
    params["train_data"], params["valid_data"], params["test_data"] = build_dataset(processor, **params)
    params["data_format"] = "parquet"
    data_dir = work / params["dataset_id"]
    feature_map = FeatureMap(params["dataset_id"], str(data_dir))
    feature_map.load(str(data_dir / "feature_map.json"), params)
    model = DeepFM(feature_map, **params)
    Path(model.checkpoint).parent.mkdir(parents=True, exist_ok=True)
    train_gen, valid_gen = RankDataLoader(feature_map, stage="train", **params)
    t0 = time.perf_counter()
    model.fit(train_gen, validation_data=valid_gen, **params)
    seconds = time.perf_counter() - t0
    test_gen = RankDataLoader(feature_map, stage="test", **params)
    test = model.evaluate(test_gen)
    epochs = model._epoch_index + 1
    examples = train_gen.num_samples * epochs
    result = {
        "peer": "FuxiCTR DeepFM",
        "fuxictr": __import__("fuxictr").__version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "auc": float(test["AUC"]),
        "logloss": float(test["logloss"]),
        "epochs": epochs,
        "train_examples": train_gen.num_samples,
        "fit_seconds": seconds,
        "examples_per_s": examples / seconds,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
