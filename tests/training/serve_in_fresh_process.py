"""Run by the tests in a fresh interpreter whose PYTHONPATH is one extracted model.tar.gz's
code/, as SageMaker's serving container puts code/ on sys.path. Loads the model with its own
inference.py (model_fn on the extracted folder) and answers the requests given on stdin."""

import base64
import json
import sys

import inference
import maas_training

job = json.loads(sys.stdin.read())
model = inference.model_fn(job["model_dir"])
answers = []
for case in job["cases"]:
    body = base64.b64decode(case["body"])
    try:
        data = inference.input_fn(body, case["content_type"])
        answers.append(
            {
                "body": inference.output_fn(inference.predict_fn(data, model), "application/json"),
                "module_file": inference.__file__,
                "package_file": maas_training.__file__,
                "backend": model.backend.name,
            }
        )
    except ValueError as e:
        answers.append({"error": f"{type(e).__name__}: {e}"})
print(json.dumps(answers))
