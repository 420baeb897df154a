"""CI provider adapters: each fetches a build's reports behind one small interface (base.Provider)."""

from evidence.providers.base import FetchedFile, Provider, ProviderError, TransientProviderError


def adapter_for(provider: str) -> Provider:
    from evidence.providers.github import GitHubActions
    from evidence.providers.gitlab import GitLab

    adapters = {"github": GitHubActions, "gitlab": GitLab}
    if provider not in adapters:
        raise ProviderError(f"no adapter for CI provider {provider!r}; known: {', '.join(adapters)}")
    return adapters[provider]()


__all__ = ["FetchedFile", "Provider", "ProviderError", "TransientProviderError", "adapter_for"]
