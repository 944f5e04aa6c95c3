import sys

from resnet_course.grading.cli import main

sys.exit(main())
