"""``python -m ptdssm`` (also what ``torchrun -m ptdssm`` runs)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
