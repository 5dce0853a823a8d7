"""Run by test_handle.py in a fresh interpreter whose PYTHONPATH is one extracted model.tar.gz's
code/, as the serving container puts it. Calls the packaged inference.py's `handle` as TorchServe
does: once at load with no data, then once per batch given on stdin, with a context shaped like
TorchServe's own (pytorch/serve ts/context.py and its per-request RequestProcessor: request
headers as the sender spelled them, a status of 200 until set). For comparison it answers the
same requests one at a time through input_fn, predict_fn and output_fn. Prints, per batch, the
answers, statuses, content types and response headers, the rows of each predict_fn call the
batch took, and the one-at-a-time answers."""

import base64
import json
import sys

import inference
import maas_training


class RequestProcessor:
    def __init__(self, headers):
        self._request_properties = headers
        self._status_code = 200
        self._reason_phrase = None
        self._response_header = {}

    def get_request_properties(self):
        return self._request_properties

    def get_request_property(self, key):
        return self._request_properties.get(key)

    def report_status(self, code, reason_phrase=None):
        self._status_code = code
        self._reason_phrase = reason_phrase

    def get_response_status_code(self):
        return self._status_code

    def add_response_property(self, key, value):
        self._response_header[key] = value

    def get_response_headers(self):
        return self._response_header


class Context:
    def __init__(self, model_dir, headers):
        self.system_properties = {
            "model_dir": model_dir,
            "gpu_id": None,
            "batch_size": max(1, len(headers)),
            "server_name": "MMS",
            "server_version": "0.12.0",
            "limit_max_image_pixels": True,
        }
        self.request_processor = [RequestProcessor(h) for h in headers]

    def get_request_header(self, idx, key):
        return self.request_processor[idx].get_request_property(key)

    def get_all_request_header(self, idx):
        return self.request_processor[idx].get_request_properties()

    def set_response_content_type(self, idx, value):
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx):
        return self.get_response_headers(idx).get("content-type")

    def set_response_status(self, code=200, phrase="", idx=0):
        self.request_processor[idx].report_status(code, reason_phrase=phrase)

    def set_response_header(self, idx, key, value):
        self.request_processor[idx].add_response_property(key, value)

    def get_response_headers(self, idx):
        return self.request_processor[idx].get_response_headers()


def header(headers, name):
    return next((v for k, v in headers.items() if k.lower() == name), None)


def one_at_a_time(model, body, headers):
    try:
        data = inference.input_fn(body, header(headers, "content-type") or "application/json")
        prediction = predict_one(data, model)
        return {"answer": json.loads(inference.output_fn(prediction, header(headers, "accept")))}
    except ValueError as e:
        return {"error": f"{type(e).__name__}: {e}"}


job = json.loads(sys.stdin.read())
model_dir = job["model_dir"]
calls = []
predict_one = inference.predict_fn


def counted_predict_fn(data, model):
    calls.append(len(data.values))
    return predict_one(data, model)


inference.predict_fn = counted_predict_fn
loaded = inference.handle(None, Context(model_dir, []))
model = inference.model_fn(model_dir)
results = []
for batch in job["batches"]:
    calls.clear()
    headers = [request["headers"] for request in batch]
    bodies = [base64.b64decode(request["body"]) for request in batch]
    context = Context(model_dir, headers)
    answers = inference.handle([{"body": bytearray(b)} for b in bodies], context)
    predict_calls = list(calls)
    results.append(
        {
            "answers": [json.loads(a) for a in answers],
            "statuses": [p.get_response_status_code() for p in context.request_processor],
            "response_headers": [p.get_response_headers() for p in context.request_processor],
            "predict_calls": predict_calls,
            "one_at_a_time": [one_at_a_time(model, b, h) for b, h in zip(bodies, headers)],
        }
    )
print(
    json.dumps(
        {
            "load_answer": loaded,
            "module_file": inference.__file__,
            "package_file": maas_training.__file__,
            "results": results,
        }
    )
)
