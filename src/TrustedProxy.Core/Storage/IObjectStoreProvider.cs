using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Storage;

/// <summary>
/// Creates one kind of backend from its configuration section. Providers are registered once
/// and chosen by <c>TrustedProxy:Storage:Backend</c>; an unknown or duplicate name fails at start-up.
/// </summary>
public interface IObjectStoreProvider
{
    /// <summary>The configuration name, for example <c>s3</c>.</summary>
    string Name { get; }

    /// <summary>Creates the store and makes sure its container exists; reports configuration errors all at once.</summary>
    Task<IObjectStore> CreateAsync(IConfigurationSection section, string contentRoot, CancellationToken cancellationToken);
}
