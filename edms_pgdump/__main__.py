from edms_pgdump.cli import main

main()
