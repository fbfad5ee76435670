from tf2hf.cli import main

main()
