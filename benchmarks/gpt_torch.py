"""The PyTorch twin of examples/gpt.py: the same model, data and options, trained on torch.

    python benchmarks/gpt_torch.py [the options of examples/gpt.py; --out and --resume
                                    are ignored]

The model classes, batches, training step and loss estimates are tensorgrad.gpt's, built
for torch (`gpt_classes(torch)`), so the two runs differ only in the library (and in its
random streams: the initial weights and the batches are drawn differently). Prints the
final train / val / test losses (estimated as examples/gpt.py does) and the training time,
to set beside examples/gpt.py's summary.json. PyTorch runs on one thread: on a machine
whose cores are busy, its OpenMP threads wait for each other and a run takes many times
longer (benchmarks/gpt_step.py compares the speeds).
"""
import json
import sys
import time

import torch

from tensorgrad.gpt import estimate_loss, gpt_classes, load_text, parse_args, train_step


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    _, (train_data, val_data, test_data), itos = load_text(args.data)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = gpt_classes(torch)(len(itos), args.block_size, args.n_embd, args.n_head,
                               args.n_layer, args.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step(torch, model, optimizer, train_data, args.batch_size, args.block_size, g)
    seconds = time.perf_counter() - start
    result = {name: estimate_loss(torch, model, data, args.batch_size, args.block_size,
                                  10 * args.eval_batches, torch.Generator().manual_seed(0))
              for name, data in (("train", train_data), ("val", val_data), ("test", test_data))}
    print(json.dumps({"loss": result, "seconds": round(seconds, 2), "steps": args.steps,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main(sys.argv[1:])
