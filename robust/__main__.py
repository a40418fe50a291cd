from robust.cli import main

main()
