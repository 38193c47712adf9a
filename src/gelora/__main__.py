from gelora.cli import main

raise SystemExit(main())
