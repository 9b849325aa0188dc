using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Storage;

/// <summary>Chooses the backend named in configuration among the registered providers.</summary>
internal sealed class ObjectStoreSelector
{
    private readonly Dictionary<string, IObjectStoreProvider> _providers;

    public ObjectStoreSelector(IEnumerable<IObjectStoreProvider> providers)
    {
        _providers = new(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in providers)
        {
            if (!_providers.TryAdd(provider.Name, provider))
            {
                throw new InvalidOperationException($"two storage backends are registered under the name '{provider.Name}'");
            }
        }
    }

    public IReadOnlyCollection<string> Names => _providers.Keys;

    public Task<IObjectStore> CreateAsync(IConfigurationSection storageSection, string contentRoot, CancellationToken cancellationToken)
    {
        var name = storageSection["Backend"];
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new InvalidOperationException($"TrustedProxy:Storage:Backend is not set; choose one of: {string.Join(", ", Names)}");
        }

        if (!_providers.TryGetValue(name, out var provider))
        {
            throw new InvalidOperationException($"unknown storage backend '{name}'; choose one of: {string.Join(", ", Names)}");
        }

        return provider.CreateAsync(storageSection.GetSection(provider.Name), contentRoot, cancellationToken);
    }
}
