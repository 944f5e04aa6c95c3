"""nbgrader configuration of the course folder (run nbgrader commands from this directory).

    cd instructor && ../.venv/bin/nbgrader generate_assignment ResNet50 --force --no-db
    cd instructor && ../.venv/bin/nbgrader validate source/ResNet50/ResNet50.ipynb

`make release` does the first (into a temporary folder) and copies the result to ../ResNet50.ipynb.
"""
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CourseDirectory.course_id = "resnet-course"
# Training ResNet50 in the notebook takes minutes; nbgrader's default limit is 30 s per cell.
c.Execute.timeout = 7200
