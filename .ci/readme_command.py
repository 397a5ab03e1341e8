"""
Print one of the two commands README.rst opens with ("run" or "test"), so
CI runs exactly what a newcomer reads.
"""

import sys

with open("README.rst", encoding="utf-8") as f:
    commands = [line.strip() for line in f if line.startswith("    python3 -m venv")]
which = {"run": 0, "test": 1}[sys.argv[1]]
print(commands[which])
