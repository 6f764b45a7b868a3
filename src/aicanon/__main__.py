from aicanon.cli import main

main()
