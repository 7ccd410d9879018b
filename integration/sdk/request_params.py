"""Lists every parameter name of an action's request in the official ECI Python SDK's model
(alibabacloud-eci20180808), flattened the way the RPC wire spells them: nested objects as
`Parent.Child`, list items as `Parent.N.Child` (`N` for any index).

Usage: python request_params.py ACTION   (e.g. CreateContainerGroup)
Prints one name a line, sorted.

The SDK's models are generated from the API's metadata: a name missing here is one ECI would
silently ignore.
"""

import inspect
import sys
import typing

from alibabacloud_eci20180808 import models


def sample(annotation, depth):
    """A value of `annotation` with every field set, so to_map() names all of them."""
    origin = typing.get_origin(annotation)
    if origin in (list, typing.List):
        (item,) = typing.get_args(annotation)
        return [sample(item, depth)]
    if origin in (dict, typing.Dict):
        return {"k": "v"}
    if inspect.isclass(annotation) and hasattr(annotation, "to_map") and depth < 8:
        return filled(annotation, depth + 1)
    if annotation is bool:
        return True
    if annotation is int:
        return 1
    if annotation is float:
        return 1.5
    return "x"


def filled(cls, depth=0):
    kwargs = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        kwargs[name] = sample(param.annotation, depth)
    return cls(**kwargs)


def flatten(value, prefix, out):
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(inner, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        for inner in value:
            flatten(inner, f"{prefix}.N", out)
    else:
        out.add(prefix)


def main() -> None:
    action = sys.argv[1]
    request = filled(getattr(models, f"{action}Request"))
    names = set()
    flatten(request.to_map(), "", names)
    for name in sorted(names):
        print(name)


if __name__ == "__main__":
    main()
