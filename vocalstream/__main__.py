from vocalstream.cli import main

main()
