from vsession.cli import main

raise SystemExit(main())
