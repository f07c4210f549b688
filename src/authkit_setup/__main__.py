from authkit_setup.launch import main

main()
