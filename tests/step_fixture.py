"""A stand-in GPU step for the runner tests: prints some output, then a result line or an exit code."""

import json
import sys

if __name__ == "__main__":
    print("training...")
    if sys.argv[1] == "ok":
        print("RECPIPE_RESULT " + json.dumps({"run_id": "abc", "args": sys.argv[1:]}))
    elif sys.argv[1] == "silent":
        print("done, but no result line")
    else:
        print("out of memory")
        sys.exit(3)
