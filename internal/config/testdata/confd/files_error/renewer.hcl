# Problems in several files: reported main file first, then the conf.d
# files in name order, each with its own file name and position.
acme {}

defaults {
  key_type = "rsa1024"
}
