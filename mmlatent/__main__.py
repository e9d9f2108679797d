from mmlatent.cli import main

raise SystemExit(main())
