import sys

from kubeadm_audit.cli import main

sys.exit(main())
