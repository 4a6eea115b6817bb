"""Train the lecture's character-level GPT on tensorgrad (see tensorgrad/gpt.py for the code).

    python examples/gpt.py --help
"""
import sys

from tensorgrad.gpt import main

if __name__ == "__main__":
    sys.exit(main())
