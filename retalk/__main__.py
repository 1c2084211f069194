from retalk.cli import main

raise SystemExit(main())
