import DeliveryCore
print("todo")
