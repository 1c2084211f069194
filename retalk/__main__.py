import sys

try:
    from retalk.cli import main
except KeyboardInterrupt:  # Ctrl-C while still importing: the same one line and status as later
    print("retalk: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
