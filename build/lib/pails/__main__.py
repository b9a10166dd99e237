from pails.cli import main

main()
