"""Run by the tests in a fresh interpreter: loads each extracted model.tar.gz the way SageMaker
does (code/ on sys.path, model_fn on the extracted folder) and answers the requests given."""

import base64
import json
import sys

cases = json.loads(sys.stdin.read())
answers = []
loaded = {}
for case in cases:
    root = case["model_dir"]
    if root not in loaded:
        for name in [m for m in sys.modules if m == "inference" or m.startswith("maas_")]:
            del sys.modules[name]
        sys.path.insert(0, f"{root}/code")
        import inference

        loaded[root] = (inference, inference.model_fn(root))
        sys.path.remove(f"{root}/code")
    module, model = loaded[root]
    body = base64.b64decode(case["body"])
    try:
        data = module.input_fn(body, case["content_type"])
        answers.append(
            {
                "body": module.output_fn(module.predict_fn(data, model), "application/json"),
                "module_file": module.__file__,
                "backend": model.backend.name,
            }
        )
    except ValueError as e:
        answers.append({"error": f"{type(e).__name__}: {e}"})
print(json.dumps(answers))
