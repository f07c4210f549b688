from authkit_setup.cli import main

main()
