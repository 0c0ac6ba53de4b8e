"""County → township → village → parcel, farm parks, GeoJSON geometry."""
