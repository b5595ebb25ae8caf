from archon.cli.main import main

raise SystemExit(main())
