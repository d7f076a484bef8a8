"""A stand-in GPU step for the runner tests: prints some output, then a result line or an exit code."""

import json
import sys


def main(argv: list[str]) -> dict:
    """The in-process entry point: the result dict, or the exception a failing step raises."""
    if argv[0] == "ok":
        return {"run_id": "abc", "args": argv}
    if argv[0] == "none":
        return None
    raise MemoryError("out of memory")


if __name__ == "__main__":
    print("training...")
    if sys.argv[1] == "ok":
        print("RECPIPE_RESULT " + json.dumps({"run_id": "abc", "args": sys.argv[1:]}))
    elif sys.argv[1] == "silent":
        print("done, but no result line")
    else:
        print("out of memory")
        sys.exit(3)
