"""Train the names MLP on tensorgrad (see tensorgrad/makemore.py for the code).

    python examples/makemore.py --help
"""
import sys

from tensorgrad.makemore import main

if __name__ == "__main__":
    sys.exit(main())
