"""Runs a command in this process group and kills the group if the emulator goes away.

Started by the emulator as `python _guard.py CMD...` in a new session, with stdin a pipe from
the emulator: when that pipe closes (the emulator exited, even by SIGKILL) the whole group is
killed, so a training script never outlives the stack. Standalone on purpose: no imports of ours.
"""

import os
import signal
import subprocess
import sys
import threading


def main() -> int:
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)

    def watch_parent() -> None:
        sys.stdin.buffer.read()
        if child.poll() is None:
            os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch_parent, daemon=True).start()
    # SIGTERM reaches the whole group; the guard outlives it to report the child's exit code.
    signal.signal(signal.SIGTERM, lambda *_: None)
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.stdout.flush()
    # os._exit: a normal exit would wait on the thread still blocked reading stdin.
    os._exit(main())
