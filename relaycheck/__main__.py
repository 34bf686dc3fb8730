from relaycheck.cli import main

raise SystemExit(main())
